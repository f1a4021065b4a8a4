//go:build !linux

package procs

import "syscall"

// sysProcAttr: outside Linux the children share the parent's process group.
func sysProcAttr() *syscall.SysProcAttr { return nil }
