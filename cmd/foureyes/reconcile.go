package main

import (
	"fmt"

	"github.com/foureyes-dev/foureyes/bot"
	"github.com/foureyes-dev/foureyes/handlers"
	"github.com/foureyes-dev/foureyes/reconcile"
)

// wireReconcile builds the reconciler (pushes the forges never delivered)
// over the same intake as webhook deliveries, and lets the service queue
// the follow-up work of an installation the same way.
func (s *server) wireReconcile(in handlers.Intake, defPolicy *bot.PolicyFile) error {
	s.reconciler = &reconcile.Reconciler{
		Forges:        map[bot.ForgeName]reconcile.Forge{},
		Store:         s.db,
		Enqueue:       in.Accept,
		DefaultPolicy: defPolicy,
		Observer:      func(forge string) { s.metrics.ReconciledPushes.WithLabelValues(forge).Inc() },
		Logger:        s.logger.With("component", "reconcile"),
	}
	for name, f := range s.forges {
		rf, ok := f.(reconcile.Forge)
		if !ok {
			return fmt.Errorf("forge %s cannot list branches and tags to reconcile", name)
		}
		s.reconciler.Forges[name] = rf
	}
	s.service.Enqueue = in.Accept
	return nil
}
