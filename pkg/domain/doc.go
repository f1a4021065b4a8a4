// Package domain is the Article aggregate of inkstream: its fields and their
// validation rules, the commands that change it, Decide (state + command →
// events or an error kind) and Apply (state + event → state).
//
// The package is pure: it knows neither NATS nor HTTP. The wire form of events
// lives in package events.
package domain
