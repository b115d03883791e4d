package rule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Pattern is a parsed complex event pattern. Its text form is
//
//	step [-> step]... [within DURATION] [strict|relaxed] [without NAME[, NAME]...]
//	step := [!]NAME[{N}]
//
// NAME is an event of the rule (a named condition; it occurs on the rising edge of its
// condition). "A -> B" is A followed by B; "A{3}" is three occurrences of A; "!B" is
// negation: between two positive steps, no B may occur; as the last step, "A -> !B
// within 5s" matches when no B follows A within 5 s. "within" bounds the whole match
// from its first occurrence. "relaxed" (the default) lets other events of the pattern
// occur between steps; "strict" breaks a partial match when any other event of the
// pattern occurs between steps. "without C" breaks a partial match when C occurs at
// any point of it.
type Pattern struct {
	Steps   []Step
	Within  time.Duration
	Strict  bool
	Without []string
}

// Step is one element of a pattern sequence.
type Step struct {
	Event string
	Not   bool
	Count int // at least 1
}

// PatternError is a syntax error in a pattern, at byte Offset (0-based) of the text.
type PatternError struct {
	Offset int
	Msg    string
}

// Error formats the error with its 1-based column.
func (e *PatternError) Error() string {
	return fmt.Sprintf("pattern: column %d: %s", e.Offset+1, e.Msg)
}

// String formats the pattern in its text form; ParsePattern(p.String()) equals p.
func (p *Pattern) String() string {
	var b strings.Builder
	for i, s := range p.Steps {
		if i > 0 {
			b.WriteString(" -> ")
		}
		if s.Not {
			b.WriteByte('!')
		}
		b.WriteString(s.Event)
		if s.Count > 1 {
			fmt.Fprintf(&b, "{%d}", s.Count)
		}
	}
	if p.Within > 0 {
		b.WriteString(" within " + p.Within.String())
	}
	if p.Strict {
		b.WriteString(" strict")
	}
	if len(p.Without) > 0 {
		b.WriteString(" without " + strings.Join(p.Without, ", "))
	}
	return b.String()
}

// Events lists the event names the pattern uses, without duplicates.
func (p *Pattern) Events() []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, s := range p.Steps {
		add(s.Event)
	}
	for _, n := range p.Without {
		add(n)
	}
	return out
}

type patLexer struct {
	s   string
	pos int
}

func (l *patLexer) skip() {
	for l.pos < len(l.s) && (l.s[l.pos] == ' ' || l.s[l.pos] == '\t' || l.s[l.pos] == '\n' || l.s[l.pos] == '\r') {
		l.pos++
	}
}

func (l *patLexer) word() (string, int) {
	l.skip()
	start := l.pos
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' {
			l.pos++
			continue
		}
		break
	}
	return l.s[start:l.pos], start
}

func (l *patLexer) peek(t string) bool {
	l.skip()
	return strings.HasPrefix(l.s[l.pos:], t)
}

const maxPatternSteps = 32

// ParsePattern parses the text form of a pattern (see Pattern).
func ParsePattern(s string) (*Pattern, error) {
	l := &patLexer{s: s}
	p := &Pattern{}
	fail := func(at int, format string, a ...any) (*Pattern, error) {
		return nil, &PatternError{Offset: at, Msg: fmt.Sprintf(format, a...)}
	}
	for {
		l.skip()
		at := l.pos
		st := Step{Count: 1}
		if l.peek("!") {
			st.Not = true
			l.pos++
		}
		name, nat := l.word()
		if !isName(name) {
			if name == "" {
				if l.pos >= len(l.s) {
					return fail(nat, "expected an event name, found the end")
				}
				return fail(nat, "expected an event name, found %q", l.s[l.pos:l.pos+1])
			}
			return fail(nat, "%q is not an event name", name)
		}
		if isKeyword(name) {
			return fail(nat, "expected an event name, found keyword %q", name)
		}
		st.Event = name
		if l.peek("{") {
			l.pos++
			n, nat := l.word()
			c, err := strconv.Atoi(n)
			if err != nil || c < 1 || c > 1000 {
				return fail(nat, "a count must be an integer from 1 to 1000, found %q", n)
			}
			if !l.peek("}") {
				return fail(l.pos, "expected }")
			}
			l.pos++
			if st.Not {
				return fail(at, "a negated step takes no count")
			}
			st.Count = c
		}
		p.Steps = append(p.Steps, st)
		if len(p.Steps) > maxPatternSteps {
			return fail(at, "too many steps (at most %d)", maxPatternSteps)
		}
		if l.peek("->") {
			l.pos += 2
			continue
		}
		break
	}
	for {
		l.skip()
		if l.pos >= len(l.s) {
			break
		}
		kw, kat := l.word()
		switch kw {
		case "within":
			if p.Within != 0 {
				return fail(kat, "within given twice")
			}
			d, dat := l.word()
			v, err := time.ParseDuration(d)
			if err != nil || v <= 0 {
				return fail(dat, "within needs a positive duration such as 2s or 10m, found %q", d)
			}
			p.Within = v
		case "strict":
			p.Strict = true
		case "relaxed":
			p.Strict = false
		case "without":
			for {
				n, nat := l.word()
				if !isName(n) || isKeyword(n) {
					return fail(nat, "without needs event names, found %q", n)
				}
				p.Without = append(p.Without, n)
				if l.peek(",") {
					l.pos++
					continue
				}
				break
			}
		case "":
			if l.peek("->") {
				return fail(l.pos, "-> after a clause: steps come first")
			}
			return fail(l.pos, "unexpected %q", l.s[l.pos:l.pos+1])
		default:
			return fail(kat, "unexpected %q (want ->, within, strict, relaxed or without)", kw)
		}
	}
	if p.Steps[0].Not {
		return fail(0, "a pattern cannot start with a negation")
	}
	for i := 1; i < len(p.Steps); i++ {
		if p.Steps[i].Not && p.Steps[i-1].Not {
			return fail(0, "two negations in a row")
		}
	}
	if p.Steps[len(p.Steps)-1].Not && p.Within == 0 {
		return fail(0, "a pattern that ends with a negation needs within")
	}
	return p, nil
}

func isKeyword(s string) bool {
	switch s {
	case "within", "strict", "relaxed", "without":
		return true
	}
	return false
}
