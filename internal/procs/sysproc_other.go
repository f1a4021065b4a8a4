//go:build !linux

package procs

import (
	"os"
	"syscall"
)

// sysProcAttr: outside Linux the children share the parent's process group.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// maxRSS is not known here.
func maxRSS(*os.ProcessState) int64 { return 0 }
