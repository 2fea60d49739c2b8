package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Figures of the slow-sender attack. The attacker needs no secret: GitHub's
// signature covers the body, so the server must read a body before it can
// tell an attacker from GitHub.
const (
	attackConns    = 80
	attackDeclared = 25 << 20 // each declares the whole 25 MiB limit
	attackFor      = 15 * time.Second
	// headerConns more trickle their headers instead.
	headerConns = 20
	// The server's own footprint is what remains: a few MiB per thousand
	// connections. Before, each connection allocated its declared length.
	attackMemCeiling = 64 << 20
)

// TestBinarySlowSendersCannotExhaustIntake drives the attack of issue 12
// against the built binary: 80 connections that each declare a 25 MiB body
// and trickle one byte a second, reconnecting whenever they are cut off,
// while GitHub keeps delivering signed events. The server's peak resident
// memory (VmHWM) must stay within attackMemCeiling of where it started,
// slow senders must be cut off, and every signed delivery must be accepted
// within a second.
func TestBinarySlowSendersCannotExhaustIntake(t *testing.T) {
	be := newBinaryEnv(t)
	p := be.start(t)
	pid := p.cmd.Process.Pid
	_, before := procMemory(t, pid)

	ctx, cancel := context.WithTimeout(context.Background(), attackFor)
	defer cancel()
	var (
		wg       sync.WaitGroup
		cutOff   atomic.Int64 // attack connections the server closed
		longest  atomic.Int64 // longest a single attack connection lived, ns
		sentByte atomic.Int64
	)
	for i := 0; i < attackConns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for ctx.Err() == nil {
				lived, closed := slowSender(ctx, be.addr, &sentByte)
				if closed {
					cutOff.Add(1)
				}
				for {
					old := longest.Load()
					if int64(lived) <= old || longest.CompareAndSwap(old, int64(lived)) {
						break
					}
				}
			}
		}(i)
	}

	var headerCutOff atomic.Int64
	for i := 0; i < headerConns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if lived, closed := slowHeaders(ctx, be.addr); closed {
					headerCutOff.Add(1)
					if lived > 8*time.Second {
						t.Errorf("a slow header sender held its connection for %s", lived)
					}
				}
			}
		}()
	}

	// GitHub, meanwhile: a signed delivery every 200 ms.
	_, opened := be.addPR(t, 1)
	var latencies []time.Duration
	base := "http://" + be.addr
	// Let the attack connections open first.
	time.Sleep(time.Second)
	for n := 0; ctx.Err() == nil; n++ {
		start := time.Now()
		reqCtx, reqCancel := context.WithTimeout(context.Background(), 5*time.Second)
		status, err := sendGitHub(reqCtx, base, be.secret, "pull_request", fmt.Sprintf("attack-%d", n), opened)
		reqCancel()
		took := time.Since(start)
		if err != nil || status != http.StatusAccepted {
			t.Errorf("signed delivery %d during the attack: status %d, %v (after %s)", n, status, err, took)
			cancel()
			break
		}
		latencies = append(latencies, took)
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	hwm, rss := procMemory(t, pid)

	var worst time.Duration
	for _, l := range latencies {
		worst = max(worst, l)
	}
	t.Logf("attack: %d connections x %d declared bytes at 1 byte/s for %s; %d bytes sent, %d connections cut off, longest lived %s",
		attackConns, attackDeclared, attackFor, sentByte.Load(), cutOff.Load(), time.Duration(longest.Load()).Round(time.Millisecond))
	t.Logf("and %d connections trickling headers: %d cut off", headerConns, headerCutOff.Load())
	t.Logf("server memory: VmRSS %d KiB before, VmHWM %d KiB peak, VmRSS %d KiB after", before>>10, hwm>>10, rss>>10)
	t.Logf("signed deliveries: %d accepted, worst latency %s", len(latencies), worst.Round(time.Millisecond))

	// Acceptance within a second is the goal; a machine busy with other
	// test packages can stall any one request for a moment, so 95 % must
	// make it within 1 s and none may come near the 5 s a sender waits.
	slow := 0
	for _, l := range latencies {
		if l > time.Second {
			slow++
		}
	}
	if slow*20 > len(latencies) {
		t.Errorf("%d of %d signed deliveries took over 1s during the attack (worst %s)", slow, len(latencies), worst)
	}
	if worst > 4*time.Second {
		t.Errorf("a signed delivery took %s during the attack", worst)
	}
	if len(latencies) < 20 {
		t.Errorf("only %d signed deliveries went through", len(latencies))
	}
	if cutOff.Load() < attackConns {
		t.Errorf("only %d slow connections were cut off in %s", cutOff.Load(), attackFor)
	}
	if headerCutOff.Load() < headerConns {
		t.Errorf("only %d slow header senders were cut off in %s", headerCutOff.Load(), attackFor)
	}
	if l := time.Duration(longest.Load()); l > 10*time.Second {
		t.Errorf("a slow sender held its connection for %s", l)
	}
	if hwm-before > attackMemCeiling {
		t.Errorf("peak RSS grew by %d MiB during the attack (from %d to %d MiB), ceiling %d MiB",
			(hwm-before)>>20, before>>20, hwm>>20, attackMemCeiling>>20)
	}
}

// slowSender opens one connection, sends the headers of a delivery
// declaring attackDeclared bytes, then one body byte a second until ctx
// ends or the server closes the connection. It reports how long the
// connection lived and whether the server closed it.
func slowSender(ctx context.Context, addr string, sent *atomic.Int64) (time.Duration, bool) {
	head := fmt.Sprintf("POST /webhooks/github HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n",
		addr, strings.Repeat("0", 64), attackDeclared)
	return trickle(ctx, addr, head, '{', sent)
}

// slowHeaders sends a request line and then one header byte a second.
func slowHeaders(ctx context.Context, addr string) (time.Duration, bool) {
	return trickle(ctx, addr, "POST /webhooks/github HTTP/1.1\r\nHost: "+addr+"\r\nX-Padding: ", 'a', nil)
}

// trickle sends prefix, then b once a second (counted in sent, when set)
// until ctx ends or the server closes the connection; it reports how long
// the connection lived and whether the server closed it.
func trickle(ctx context.Context, addr, prefix string, b byte, sent *atomic.Int64) (time.Duration, bool) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		time.Sleep(100 * time.Millisecond)
		return 0, false
	}
	defer c.Close()
	fmt.Fprint(c, prefix)
	closed := make(chan struct{})
	go func() {
		// Whatever the server answers (408) or closing: the end of it.
		bufio.NewReader(c).ReadString(0)
		close(closed)
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-closed:
			return time.Since(start), true
		case <-t.C:
			if _, err := c.Write([]byte{b}); err != nil {
				return time.Since(start), true
			}
			if sent != nil {
				sent.Add(1)
			}
		}
	}
}

// procMemory returns VmHWM (peak resident set) and VmRSS of a process, in
// bytes, from /proc/PID/status.
func procMemory(t *testing.T, pid int) (hwm, rss int64) {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("needs /proc to measure memory: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmHWM" && name != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("parse %q: %v", line, err)
		}
		if name == "VmHWM" {
			hwm = kb << 10
		} else {
			rss = kb << 10
		}
	}
	return hwm, rss
}
