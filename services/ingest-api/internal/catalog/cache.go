package catalog

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch-webhooks/dispatch/libs/clock"
	"github.com/dispatch-webhooks/dispatch/libs/domain"
)

// How fresh an instance's catalog is. A lookup uses the copy in memory; a
// copy older than refreshAfter is refreshed in the background (one read of
// a one-row revision, and a reload only when it moved), and one older than
// MaxStaleness is refreshed before the lookup answers. Under load the
// background refresh keeps the copy fresh, so events cost no round trip;
// after a quiet second the first event pays one to be sure.
const (
	refreshAfter = 250 * time.Millisecond
	// MaxStaleness bounds how long a change made on another instance may
	// go unseen by this one.
	MaxStaleness = time.Second
)

// Source is where the catalog is read.
type Source interface {
	CatalogRevision(ctx context.Context) (int64, error)
	Catalog(ctx context.Context) (int64, []domain.EventType, error)
}

// Entry is an event type as ingest uses it: its mode, its latest version
// and that version's compiled schema.
type Entry struct {
	Name       string
	Version    int
	Validation domain.SchemaValidation
	Deprecated bool
	// Schema is nil if the stored schema no longer compiles (it did when
	// it was stored); such a type is not validated.
	Schema *Schema
	// Example is the first example, for test sends.
	Example json.RawMessage
}

type snapshot struct {
	revision int64
	// checked is when the revision was last read (its read began then).
	checked time.Time
	types   map[string]*Entry
}

// Cache is one instance's compiled copy of the catalog.
type Cache struct {
	source Source
	log    *slog.Logger
	clock  clock.Clock

	snap       atomic.Pointer[snapshot]
	refreshMu  sync.Mutex
	background atomic.Bool
}

// NewCache returns an empty cache that loads the catalog on first use;
// clk times its staleness.
func NewCache(source Source, log *slog.Logger, clk clock.Clock) *Cache {
	return &Cache{source: source, log: log, clock: clk}
}

// Lookup returns the event type name, or nil if the catalog has no such
// type (or only an archived one). The error is the store's, when the
// catalog had to be read and could not be.
func (c *Cache) Lookup(ctx context.Context, name string) (*Entry, error) {
	t, err := c.Types(ctx)
	if err != nil {
		return nil, err
	}
	return t.Lookup(name), nil
}

// Types is one consistent copy of the catalog, as fresh as Lookup's. A
// batch of events takes one, so that its freshness is checked once per
// batch rather than once per event, and all its events of a type are
// checked against the same version.
func (c *Cache) Types(ctx context.Context) (Types, error) {
	s, err := c.current(ctx)
	if err != nil {
		return Types{}, err
	}
	return Types{types: s.types}, nil
}

// Types is a copy of the catalog taken by Cache.Types.
type Types struct {
	types map[string]*Entry
}

// Lookup returns the event type name, or nil if the copy has no such type
// (or only an archived one).
func (t Types) Lookup(name string) *Entry { return t.types[name] }

// current is a snapshot no older than MaxStaleness.
func (c *Cache) current(ctx context.Context) (*snapshot, error) {
	s := c.snap.Load()
	if s != nil {
		age := c.clock.Now().Sub(s.checked)
		if age <= MaxStaleness {
			if age > refreshAfter && c.background.CompareAndSwap(false, true) {
				go func() {
					defer c.background.Store(false)
					ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), MaxStaleness)
					defer cancel()
					if err := c.refresh(ctx, false); err != nil {
						c.log.Warn("event-type catalog not refreshed", "err", err)
					}
				}()
			}
			return s, nil
		}
	}
	if err := c.refresh(ctx, false); err != nil {
		return nil, err
	}
	return c.snap.Load(), nil
}

// Refresh reads the catalog again now, as after a change made on this
// instance.
func (c *Cache) Refresh(ctx context.Context) error { return c.refresh(ctx, true) }

// refresh brings the snapshot up to date: it reads the revision and, when
// it moved (or force), the catalog. Schemas of versions already compiled
// are kept.
func (c *Cache) refresh(ctx context.Context, force bool) error {
	started := c.clock.Now()
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	old := c.snap.Load()
	if old != nil && !force && !old.checked.Before(started) {
		return nil // refreshed by another caller while this one waited
	}
	if old != nil && !force {
		rev, err := c.source.CatalogRevision(ctx)
		if err != nil {
			return err
		}
		if rev == old.revision {
			c.snap.Store(&snapshot{revision: rev, checked: started, types: old.types})
			return nil
		}
	}
	rev, types, err := c.source.Catalog(ctx)
	if err != nil {
		return err
	}
	next := &snapshot{revision: rev, checked: started, types: make(map[string]*Entry, len(types))}
	for _, t := range types {
		e := &Entry{Name: t.Name, Version: t.Version, Validation: t.Validation, Deprecated: t.Deprecated}
		if len(t.Examples) > 0 {
			e.Example = t.Examples[0]
		}
		if prev := oldEntry(old, t.Name); prev != nil && prev.Version == t.Version && prev.Schema != nil {
			e.Schema = prev.Schema
		} else if e.Schema, err = Compile(t.Schema); err != nil {
			c.log.Error("stored event-type schema does not compile; its events are not validated", "event_type", t.Name, "version", t.Version, "err", err)
		}
		next.types[t.Name] = e
	}
	c.snap.Store(next)
	return nil
}

func oldEntry(s *snapshot, name string) *Entry {
	if s == nil {
		return nil
	}
	return s.types[name]
}
