package systest_test

import (
	"os"
	"testing"

	"github.com/inkstream/inkstream/internal/natstest"
)

func TestMain(m *testing.M) {
	natstest.ServeChildNode()
	os.Exit(m.Run())
}
