// Package model holds the types every other package of the EMS shares:
// samples, qualities, point kinds, commands and events; channel point
// tables with their raw/engineering conversions; the device model
// (templates, instances, routes and computed points); and the latest-value
// snapshot with subscriptions.
//
// model imports nothing else of this module.
package model
