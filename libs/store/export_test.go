package store

// PruneSQL is the batch statement, for checking its plan.
const PruneSQL = pruneSQL
