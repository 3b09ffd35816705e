package delivery

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dispatch-webhooks/dispatch/libs/store"
)

func TestDeferralsRunOnceAndHandBackOnStop(t *testing.T) {
	t.Parallel()
	d := newDeferrals(2)
	var ran atomic.Int32
	job := func(id int64) store.Job { return store.Job{DeliveryID: id} }
	require.True(t, d.add(job(1), 10*time.Millisecond, func() { ran.Add(1) }))
	require.True(t, d.add(job(2), time.Hour, func() { ran.Add(1) }))
	require.False(t, d.add(job(3), time.Hour, func() {}), "full: the caller must use the database")
	require.Eventually(t, func() bool { return ran.Load() == 1 }, time.Second, 5*time.Millisecond)
	waiting := d.stop()
	require.Len(t, waiting, 1, "what still waits is handed back")
	require.EqualValues(t, 2, waiting[0].DeliveryID)
	require.False(t, d.add(job(4), time.Millisecond, func() {}), "nothing waits after stop")
	time.Sleep(20 * time.Millisecond)
	require.EqualValues(t, 1, ran.Load())
}
