package deploy_test

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// instruction is one Dockerfile instruction as BuildKit's parser reads it.
type instruction struct {
	cmd   string   // lower case: from, copy, run, ...
	args  []string // arguments; a JSON form's elements
	flags []string // --from=build, --mount=...
	line  int
}

// stage is one FROM and what follows it.
type stage struct {
	image, name  string
	instructions []instruction
}

// all returns the stage's instructions of one kind.
func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// parseDockerfile parses a Dockerfile with BuildKit's own parser.
func parseDockerfile(t *testing.T, rel string) []stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, rel)))
	require.NoError(t, err, rel)
	require.Empty(t, res.Warnings, rel)
	var stages []stage
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if in.cmd == "from" {
			st := stage{image: in.args[0]}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "as") {
				st.name = in.args[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			require.Equal(t, "arg", in.cmd, "%s:%d: only ARG comes before FROM", rel, in.line)
			continue
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	require.GreaterOrEqual(t, len(stages), 2, "%s is multi-stage", rel)
	return stages
}

// TestDockerfiles: each image is built in a Go stage from its own module
// directory, on its own (GOWORK=off), static and stamped, with every
// sibling module its go.mod replaces in the build; it runs on a minimal
// base as a user other than root, exposes the port the compose file gives
// it and checks its own health.
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	for _, svc := range services {
		t.Run(svc.compose, func(t *testing.T) {
			t.Parallel()
			stages := parseDockerfile(t, svc.dockerfile)
			build, final := stages[0], stages[len(stages)-1]
			require.True(t, strings.HasPrefix(build.image, "golang:"), "build stage FROM %s", build.image)
			require.NotEmpty(t, build.name)

			// The build context holds the module and every module its go.mod replaces.
			var copied []string
			for _, c := range build.all("copy") {
				require.Len(t, c.args, 2, "COPY src dst")
				require.Equal(t, strings.TrimSuffix(c.args[0], "/"), strings.TrimSuffix(c.args[1], "/"), "copied to the same relative path, so replace directives still resolve")
				copied = append(copied, strings.TrimSuffix(c.args[0], "/"))
			}
			covered := func(dir string) bool {
				for _, c := range copied {
					if dir == c || strings.HasPrefix(dir, c+"/") {
						return true
					}
				}
				return false
			}
			require.True(t, covered(svc.module), "%s copies its module %s", svc.dockerfile, svc.module)
			mf, err := modfile.Parse("go.mod", readFile(t, filepath.Join(svc.module, "go.mod")), nil)
			require.NoError(t, err)
			require.NotEmpty(t, mf.Replace)
			for _, r := range mf.Replace {
				dir := path.Clean(path.Join(svc.module, r.New.Path))
				require.True(t, covered(dir), "%s replaces %s with %s, which the build does not copy", svc.module, r.Old.Path, dir)
			}

			runs := build.all("run")
			require.NotEmpty(t, runs)
			var built bool
			for _, run := range runs {
				cmd := strings.Join(run.args, " ")
				if !strings.Contains(cmd, "-o /out/"+svc.binary+" ") {
					continue
				}
				built = true
				require.Equal(t, "/src/"+svc.module, workdirAt(build, run.line), "the build runs in the module's directory")
				for _, want := range []string{"CGO_ENABLED=0", "GOWORK=off", "go build", "-trimpath", "-X main.version=${VERSION}"} {
					require.Contains(t, cmd, want, "%s:%d", svc.dockerfile, run.line)
				}
			}
			require.True(t, built, "%s builds /out/%s", svc.dockerfile, svc.binary)

			// The runtime stage: minimal, not root, the binary as entrypoint.
			require.True(t, strings.HasPrefix(final.image, "gcr.io/distroless/static") || final.image == "scratch", "runtime FROM %s", final.image)
			users := final.all("user")
			require.NotEmpty(t, users, "%s sets a USER", svc.dockerfile)
			user := strings.Split(users[len(users)-1].args[0], ":")[0]
			require.NotContains(t, []string{"root", "0", ""}, user)
			entry := final.all("entrypoint")
			require.Len(t, entry, 1)
			require.Equal(t, "/app/"+svc.binary, entry[0].args[0])
			var copiesBinary bool
			for _, c := range final.all("copy") {
				require.Contains(t, c.flags, "--from="+build.name)
				copiesBinary = copiesBinary || (strings.Contains(strings.Join(c.args, " "), "/out/"+svc.binary) && c.args[len(c.args)-1] == "/app/")
			}
			require.True(t, copiesBinary, "%s copies /out/%s to /app/", svc.dockerfile, svc.binary)

			exposed := final.all("expose")
			if svc.oneShot() {
				require.Empty(t, exposed, "%s serves nothing", svc.compose)
				return
			}
			addr := environment(composeService(t, p, svc.compose))["ADDR"]
			require.Len(t, exposed, 1)
			require.Equal(t, strconv.Itoa(addrPort(t, addr)), exposed[0].args[0], "%s EXPOSEs the port of its ADDR in docker-compose.yml", svc.dockerfile)
			require.Contains(t, envOf(final), "ADDR="+addr, "the image listens where it exposes")
			hc := final.all("healthcheck")
			require.Len(t, hc, 1)
			require.Equal(t, []string{"CMD", "/app/" + svc.binary, "healthcheck"}, hc[0].args)
		})
	}
}

// workdirAt is the stage's WORKDIR at a line.
func workdirAt(s stage, line int) string {
	dir := "/"
	for _, in := range s.instructions {
		if in.line < line && in.cmd == "workdir" {
			if path.IsAbs(in.args[0]) {
				dir = in.args[0]
			} else {
				dir = path.Join(dir, in.args[0])
			}
		}
	}
	return dir
}

// envOf lists a stage's ENV settings as NAME=value.
func envOf(s stage) []string {
	var out []string
	for _, in := range s.all("env") {
		for i := 0; i+1 < len(in.args); i += 3 { // the parser gives name, value, separator
			out = append(out, in.args[i]+"="+in.args[i+1])
		}
	}
	return out
}

// TestDockerignoreKeepsWhatBuildsNeed: .dockerignore keeps every file a
// build needs in the context, the module's and those of every module its
// go.mod replaces, and leaves out local data and keys. (Files a package
// embeds, such as web/static, are checked by TestComposeServicesRun, which
// builds from the context .dockerignore leaves.)
func TestDockerignoreKeepsWhatBuildsNeed(t *testing.T) {
	t.Parallel()
	m := dockerignore(t)
	for _, svc := range services {
		mf, err := modfile.Parse("go.mod", readFile(t, filepath.Join(svc.module, "go.mod")), nil)
		require.NoError(t, err)
		dirs := []string{svc.module}
		for _, r := range mf.Replace {
			dirs = append(dirs, path.Clean(path.Join(svc.module, r.New.Path)))
		}
		for _, dir := range dirs {
			err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				name := d.Name()
				needed := name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".sql") ||
					(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"))
				if needed {
					ignored, err := m.MatchesOrParentMatches(filepath.ToSlash(rel))
					require.NoError(t, err)
					require.False(t, ignored, ".dockerignore leaves out %s, which the build of %s needs", rel, svc.compose)
				}
				return nil
			})
			require.NoError(t, err)
		}
	}
	for _, private := range []string{".data/secrets-key", ".data/dev-api-key", ".env", ".git/config", "bin/ingest-api"} {
		ignored, err := m.MatchesOrParentMatches(private)
		require.NoError(t, err)
		require.True(t, ignored, "%s stays out of the build context", private)
	}
}

func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	patterns, err := ignorefile.ReadAll(bytes.NewReader(readFile(t, ".dockerignore")))
	require.NoError(t, err)
	m, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	return m
}
