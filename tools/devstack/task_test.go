package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTaskCompilesWithoutCloudSDKs keeps the first `go tool task dev`
// short: Task, compiled before it prints anything, must not bring the
// cloud SDKs that its remote Taskfiles need and Dispatch does not (ADR 31).
func TestTaskCompilesWithoutCloudSDKs(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/go-task/task/v3/cmd/task").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	var cloud []string
	for _, p := range pkgs {
		for _, sdk := range []string{"github.com/aws/", "cloud.google.com/", "google.golang.org/api", "github.com/Azure/", "github.com/hashicorp/go-getter"} {
			if strings.HasPrefix(p, sdk) {
				cloud = append(cloud, p)
			}
		}
	}
	if len(cloud) > 0 {
		t.Errorf("Task compiles %d cloud SDK packages, e.g. %v", len(cloud), cloud[:min(5, len(cloud))])
	}
	if len(pkgs) > 500 {
		t.Errorf("Task compiles %d packages (standard library included), more than 500", len(pkgs))
	}
}
