package rule

import (
	"context"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Engine is the rule engine the EMS feeds with samples. Process returns the
// actions the rules took; see Action for which ones the caller must carry out.
type Engine interface {
	Process(ctx context.Context, batch []model.Sample) ([]Action, error)
}

// Ticker is the optional interface of engines with time-driven work (interval and
// cron triggers, hold times, pattern timeouts). The caller invokes Tick about every
// 100 ms from the goroutine that calls Process, never concurrently with it.
type Ticker interface {
	Tick(ctx context.Context, now time.Time) ([]Action, error)
}

// Executor carries out a command through the EMS downlink path (routing,
// validation of kind, min, max and step, the device write). *ems.EMS implements it.
type Executor interface {
	Execute(ctx context.Context, cmd model.Command) error
}

// Action is one thing a rule did or asks the caller to do.
//
// The caller handles:
//   - Type "set": Command. When the engine has an Executor, Executed is true and Err
//     holds the result; otherwise Executed is false and the caller executes it.
//   - Event != nil (types "event", "raise", "clear", and rule errors): emit the event.
//   - Type "publish": forward Samples to the relays.
//
// Types "webhook" and "log" are carried out by the engine and returned for the record.
type Action struct {
	Rule     string         `json:"rule"`
	Type     ActionType     `json:"type"`
	Key      string         `json:"key,omitempty"` // partition key of a pattern match
	Command  *model.Command `json:"command,omitempty"`
	Event    *model.Event   `json:"event,omitempty"`
	Samples  []model.Sample `json:"samples,omitempty"`
	Message  string         `json:"message,omitempty"` // log text, webhook url
	Executed bool           `json:"executed"`
	Err      error          `json:"-"`
	Error    string         `json:"error,omitempty"` // Err as text
	Time     time.Time      `json:"time"`
}

func (a *Action) fail(err error) {
	a.Err = err
	if err != nil {
		a.Error = err.Error()
	}
}
