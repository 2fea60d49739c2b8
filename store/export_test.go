package store

import "context"

// Querier and SubmitWrite let the external tests run a write of their own
// inside a group commit.
type Querier = querier

func (d *DB) SubmitWrite(ctx context.Context, op string, fn func(context.Context, Querier) error) error {
	return d.submitWrite(ctx, op, fn)
}
