// Command projector runs inkstream's projector role against a NATS JetStream server or
// cluster. -h lists its flags; each also reads INKSTREAM_<FLAG>.
package main

import "github.com/inkstream/inkstream/internal/app"

// run is the command, from its arguments to its exit.
var run = app.RunProjector

func main() { app.Main("projector", run) }
