// Package alarm is the alarm engine of the EMS: the Alarmer interface the
// data path consumes and Engine, its default implementation, which follows
// ISA-18.2 / IEC 62682 and the state model of OPC UA Alarms & Conditions.
//
// # Definitions
//
// Alarms are configured per point in YAML (LoadDefinitions,
// WithDefinitionsYAML) or in code (WithDefinitions): limit alarms HH/H/L/LL
// with absolute or percentage deadbands and on/off delays, discrete alarms
// on a value or a transition, rate of change, deviation from another point
// or a setpoint, stale data and bad quality. A definition may name a device
// template; it then applies to every instance of the template in the model
// given with WithModel. Every problem of a file is reported together as
// model.ConfigErrors naming file, line, alarm id and field.
//
// # Lifecycle
//
// Each alarm moves through normal → unacked (active, unacknowledged) →
// acked → normal, or unacked → rtn_unacked (returned to normal,
// unacknowledged) → normal on Ack. Latched alarms stop in latched after
// they clear and were acknowledged, until Reset. Shelving (one-shot: until
// the alarm clears; timed: up to WithMaxShelve), suppression by design (the
// definition's suppress_when expression) and out of service hide an alarm:
// it is still evaluated, but not annunciated; when the last of them ends,
// an alarm whose condition is active is annunciated again. Every transition
// is a model.Event with who, when and why in its Attrs: alarm_id,
// definition, level and limit (limit alarms), tag.<name> for each tag,
// state (after the transition), priority, value (the sample value that
// caused it), user, comment, reason, group and first_out.
//
// # Nuisance control, escalation and correlation
//
// Chatter detection auto-shelves an alarm that cycled active→clear
// WithChatter times within a window; flood mode (WithFlood) annunciates only
// the highest priorities while more than N alarms arrive per window and
// reports a summary when it ends; an optional per-alarm window/threshold
// suppressor (WithSuppressor) keeps its windows in a bounded LRU. Unacked
// alarms escalate along the definition's ladder; acknowledged alarms that
// stay active re-alarm. Alarms with equal tags (WithCorrelation) raised
// close together form a group whose first alarm is the first-out; an alarm
// whose depends_on alarm (a device's comm failure) is active is not
// created, but always clears.
//
// # Time, concurrency and persistence
//
// Process and Tick are called from one goroutine (the EMS data path); Tick
// drives delays, stale detection, shelve expiry, escalation, re-alarm and
// the end of floods. Operator operations (Ack, Shelve, ...) and definition
// changes may be called from any goroutine; the Events they cause are
// returned by the next Process or Tick. Batches of at least the
// WithParallel threshold are partitioned by point across workers with
// identical results. With WithDataDir states, timers, history and
// definition changes are kept in an append-only journal and resume after a
// restart.
package alarm
