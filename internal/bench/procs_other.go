//go:build !linux

package bench

import "syscall"

// sysProcAttr: outside Linux the children share the harness's process group.
func sysProcAttr() *syscall.SysProcAttr { return nil }
