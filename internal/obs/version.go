package obs

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Build is what the Go toolchain stamped into the running binary
// (runtime/debug.ReadBuildInfo).
type Build struct {
	Module   string // the main module's version: a tag, a pseudo-version, or (devel)
	Revision string // vcs.revision, when the build recorded it
	Time     string // vcs.time
	Modified bool   // vcs.modified: built from a work tree with changes
	Go       string // the Go version that built it
}

// Version returns the build information of the running binary.
func Version() Build {
	b := Build{Module: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.Module = bi.Main.Version
	}
	b.Go = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Line is the version line of program, as -version prints it:
// "command-api v1.2.0 (revision 0123456789ab, 2026-11-23T10:00:00Z) go1.26.8 linux/amd64".
func (b Build) Line(program string) string {
	var vcs []string
	if b.Revision != "" {
		rev := b.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		vcs = append(vcs, "revision "+rev)
	}
	if b.Time != "" {
		vcs = append(vcs, b.Time)
	}
	if b.Modified {
		vcs = append(vcs, "modified")
	}
	s := program + " " + b.Module
	if len(vcs) > 0 {
		s += " (" + strings.Join(vcs, ", ") + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, b.Go, runtime.GOOS, runtime.GOARCH)
}
