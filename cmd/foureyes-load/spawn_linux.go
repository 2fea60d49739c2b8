package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the server if the tool dies first,
// so an interrupted run never leaves a foureyes process behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
