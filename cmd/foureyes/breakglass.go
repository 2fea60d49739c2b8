package main

import "github.com/foureyes-dev/foureyes/bot"

// Override counts a break-glass override (bot.OverrideObserver).
func (o observer) Override(forge bot.ForgeName) {
	o.m.Overrides.WithLabelValues(string(forge)).Inc()
}

var _ bot.OverrideObserver = observer{}
