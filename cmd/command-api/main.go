// Command command-api runs inkstream's command-api role against a NATS JetStream server or
// cluster. -h lists its flags; each also reads INKSTREAM_<FLAG>.
package main

import "github.com/inkstream/inkstream/internal/app"

// run is the command, from its arguments to its exit.
var run = app.RunCommandAPI

func main() { app.Main("command-api", run) }
