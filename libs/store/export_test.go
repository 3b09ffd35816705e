package store

import (
	"context"
	"time"
)

// PruneSQL is the batch statement, for checking its plan.
const PruneSQL = pruneSQL

// LockTenantSQL is the lock a subscription's creation holds on its tenant.
const LockTenantSQL = lockTenantSQL

// RollUpSQL and RollUpDelay are the roll-up statement and its delay, for
// running it in a transaction that a test holds open.
var (
	RollUpSQL   = rollUpSQL
	RollUpDelay = rollUpDelay
)

// ClaimDelivery is ClaimDeliveries for one delivery: it returns the job to
// attempt, or the claim's error. The worker claims only in batches.
func (s *Store) ClaimDelivery(ctx context.Context, deliveryID int64, defaultTimeout, margin time.Duration) (Job, error) {
	claims, err := s.ClaimDeliveries(ctx, []int64{deliveryID}, defaultTimeout, margin)
	if err != nil {
		return Job{}, err
	}
	if claims[0].Err != nil {
		return Job{}, claims[0].Err
	}
	return claims[0].Job, nil
}
