package store

// PruneSQL is the batch statement, for checking its plan.
const PruneSQL = pruneSQL

// LockTenantSQL is the lock a subscription's creation holds on its tenant.
const LockTenantSQL = lockTenantSQL
