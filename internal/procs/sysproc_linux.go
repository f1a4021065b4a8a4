package procs

import (
	"os"
	"syscall"
)

// sysProcAttr puts a child in its own process group, so a Ctrl-C at the
// terminal reaches only the parent, which then stops the children in
// order; and has the kernel kill the child should the parent die without
// cleaning up (SIGKILL, crash).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// maxRSS is the peak resident set size of an exited process, in KiB.
func maxRSS(st *os.ProcessState) int64 {
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}
