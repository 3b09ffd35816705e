package store

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
