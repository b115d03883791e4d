package mqtt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/voltage-ems/ems/relay"
)

// topicVar is a placeholder of a topic template.
type topicVar uint8

const (
	varLiteral topicVar = iota
	varSite
	varDevice
	varPoint
	varID
	varKind
)

type topicPart struct {
	v   topicVar
	lit string
}

type topicTmpl []topicPart

var errTopic = errors.New("invalid topic")

// validTopic rejects what MQTT forbids in a publish topic name.
func validTopic(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", errTopic)
	}
	if strings.ContainsAny(s, "+#\x00") {
		return fmt.Errorf("%w %q: contains + # or NUL", errTopic, s)
	}
	return nil
}

func compileTopic(s string) (topicTmpl, error) {
	var t topicTmpl
	lit := strings.Builder{}
	for i := 0; i < len(s); {
		if s[i] == '{' {
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return nil, fmt.Errorf("%w %q: unclosed {", errTopic, s)
			}
			var v topicVar
			switch s[i+1 : i+j] {
			case "site":
				v = varSite
			case "device":
				v = varDevice
			case "point":
				v = varPoint
			case "id":
				v = varID
			case "kind":
				v = varKind
			default:
				return nil, fmt.Errorf("%w %q: unknown placeholder %s (want {site} {device} {point} {id} {kind})", errTopic, s, s[i:i+j+1])
			}
			if lit.Len() > 0 {
				t = append(t, topicPart{lit: lit.String()})
				lit.Reset()
			}
			t = append(t, topicPart{v: v})
			i += j + 1
			continue
		}
		lit.WriteByte(s[i])
		i++
	}
	if lit.Len() > 0 {
		t = append(t, topicPart{lit: lit.String()})
	}
	if err := validTopic(s); err != nil {
		return nil, err
	}
	return t, nil
}

var levelSafe = strings.NewReplacer("/", "_", "+", "_", "#", "_", "\x00", "_")

func safe(s string) string {
	if strings.ContainsAny(s, "/+#\x00") {
		return levelSafe.Replace(s)
	}
	return s
}

// render appends the topic of m to dst.
func (t topicTmpl) render(dst []byte, site string, m *relay.Message) []byte {
	dev, pt, ok := strings.Cut(m.Point, ".")
	if !ok {
		dev, pt = "", m.Point
	}
	for _, p := range t {
		switch p.v {
		case varLiteral:
			dst = append(dst, p.lit...)
		case varSite:
			dst = append(dst, site...)
		case varDevice:
			dst = append(dst, safe(dev)...)
		case varPoint:
			dst = append(dst, safe(pt)...)
		case varID:
			dst = append(dst, safe(m.Point)...)
		case varKind:
			if m.Kind == relay.KindEvent {
				dst = append(dst, safe(string(m.Event))...)
			} else {
				dst = append(dst, "sample"...)
			}
		}
	}
	return dst
}

// fixed renders a template with only {site}.
func (t topicTmpl) fixed(site string) string {
	return string(t.render(nil, site, &relay.Message{}))
}
