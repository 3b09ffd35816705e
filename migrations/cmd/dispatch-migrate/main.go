// Command dispatch-migrate applies, rolls back or reports Dispatch's schema
// migrations. A deploy runs "dispatch-migrate up" before starting services.
//
//	DATABASE_URL=postgres://... dispatch-migrate up|down [N]|version|wait [-timeout D]
//
// "wait" changes nothing: it exits 0 once the schema is at this build's
// version or newer, and 1 when it is not within the timeout (5 minutes by
// default). A service's start can wait on it while another process
// migrates, as the Helm chart's init containers do.
//
// The ingest-api image also ships it as ./dispatch, and "migrate" before
// the command is accepted, so the seed's "./dispatch migrate up" works.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/golang-migrate/migrate/v4"

	"github.com/dispatch-webhooks/dispatch/migrations"
)

const usage = "usage: dispatch-migrate up | down [N] | version | wait [-timeout D]   (DATABASE_URL names the database)"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dispatch-migrate:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		return errors.New("DATABASE_URL is not set")
	}
	if len(args) > 0 && args[0] == "migrate" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] == "wait" {
		return wait(dbURL, args[1:])
	}
	m, err := migrations.New(dbURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch args[0] {
	case "up":
		err = m.Up()
	case "down":
		steps := 1
		if len(args) > 1 {
			if steps, err = strconv.Atoi(args[1]); err != nil || steps < 1 {
				return fmt.Errorf("down: N must be a positive number, got %q", args[1])
			}
		}
		err = m.Steps(-steps)
	case "version":
		v, dirty, verr := m.Version()
		if errors.Is(verr, migrate.ErrNilVersion) {
			fmt.Println("no migration applied")
			return nil
		}
		if verr != nil {
			return verr
		}
		fmt.Printf("version %d (dirty: %v)\n", v, dirty)
		return nil
	default:
		return errors.New(usage)
	}
	if errors.Is(err, migrate.ErrNoChange) {
		fmt.Println("no change")
		return nil
	}
	if err != nil {
		return err
	}
	v, _, _ := m.Version()
	fmt.Printf("now at version %d\n", v)
	return nil
}

// wait runs "wait": it returns once the schema is at this build's version.
func wait(dbURL string, args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil || *timeout <= 0 {
		return fmt.Errorf("wait: -timeout must be a positive duration such as 10m\n%s", usage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	err := migrations.Wait(ctx, dbURL, 2*time.Second, func(reason string) { fmt.Println(reason) })
	if err != nil {
		return err
	}
	fmt.Printf("schema at version %d or newer\n", migrations.Latest())
	return nil
}
