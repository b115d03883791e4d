package modbus

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/voltage-ems/ems/model"
)

// Request is one planned read: a function code over a contiguous range of
// one unit, and the points decoded from the reply.
type Request struct {
	Unit     uint8
	Function uint8  // 1, 2, 3 or 4
	Address  uint16 // first register or bit
	Quantity uint16 // registers (FC 3, 4) or bits (FC 1, 2)
	Interval time.Duration
	Points   []PointRead
	// Note says why the request looks as it does when the planner changed
	// it at run time ("split after illegal data address").
	Note string
}

// PointRead is one point decoded from a Request's reply.
type PointRead struct {
	ID     string // channel point id, "pcs.T.1"
	Offset int    // registers (or bits) from the request's first address

	b *boundPoint
}

// String formats the request for logs and the Plan listing:
// "unit 1 fc 3 addr 100 qty 20 every 1s: 12 points".
func (r Request) String() string {
	s := fmt.Sprintf("unit %d fc %d addr %d qty %d every %s: %d points", r.Unit, r.Function, r.Address, r.Quantity, r.Interval, len(r.Points))
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	return s
}

// Excluded is a point the collector stopped reading, and why.
type Excluded struct {
	Point    string
	Unit     uint8
	Function uint8
	Address  uint16
	Reason   string
}

// Plan is the live read plan of a collector: the requests it sends each
// interval and the points it excluded (addresses a device refused).
type Plan struct {
	Requests []Request
	Excluded []Excluded
}

// String lists the requests, one per line, then the exclusions.
func (p Plan) String() string {
	var b strings.Builder
	for _, r := range p.Requests {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	for _, e := range p.Excluded {
		fmt.Fprintf(&b, "excluded %s (unit %d fc %d addr %d): %s\n", e.Point, e.Unit, e.Function, e.Address, e.Reason)
	}
	return b.String()
}

// span returns how many registers or bits the point occupies in a request.
func (b *boundPoint) span() int { return b.m.Registers() }

// planReads groups the readable points by unit, function code and
// interval, and coalesces each group into as few requests as the unit's
// limits allow.
func planReads(cfg *Config, pts []*boundPoint) []Request {
	type gkey struct {
		unit uint8
		fc   uint8
		iv   time.Duration
	}
	groups := map[gkey][]*boundPoint{}
	var keys []gkey
	for _, p := range pts {
		if p.m.Kind.Writable() {
			continue
		}
		_, iv := cfg.limitsFor(p.m.Unit)
		if p.m.Interval > 0 {
			iv = p.m.Interval
		}
		k := gkey{p.m.Unit, p.m.Function, iv}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], p)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.unit != b.unit {
			return a.unit < b.unit
		}
		if a.fc != b.fc {
			return a.fc < b.fc
		}
		return a.iv < b.iv
	})
	var out []Request
	for _, k := range keys {
		lim, _ := cfg.limitsFor(k.unit)
		out = append(out, coalesce(k.unit, k.fc, k.iv, lim, groups[k])...)
	}
	return out
}

// coalesce builds the requests of one group. Points are sorted by address;
// a point joins the current request when the gap from the request's end is
// at most the max gap and the request stays within the size limit.
func coalesce(unit, fc uint8, iv time.Duration, lim Limits, pts []*boundPoint) []Request {
	sort.SliceStable(pts, func(i, j int) bool {
		if pts[i].m.Address != pts[j].m.Address {
			return pts[i].m.Address < pts[j].m.Address
		}
		return pts[i].id < pts[j].id
	})
	maxQty, maxGap := lim.MaxRegisters, lim.MaxGap
	if isBitFunction(fc) {
		maxQty, maxGap = lim.MaxBits, lim.MaxBitGap
	}
	if maxGap < 0 {
		maxGap = 0
	}
	var out []Request
	var cur *Request
	end := 0 // exclusive end of cur
	for _, p := range pts {
		a := int(p.m.Address)
		pe := a + p.span()
		if cur != nil && !lim.NoCoalesce {
			newEnd := max(end, pe)
			if a-end <= maxGap && newEnd-int(cur.Address) <= maxQty {
				cur.Points = append(cur.Points, PointRead{ID: p.id, Offset: a - int(cur.Address), b: p})
				end = newEnd
				cur.Quantity = uint16(end - int(cur.Address))
				continue
			}
		}
		out = append(out, Request{Unit: unit, Function: fc, Address: p.m.Address, Quantity: uint16(p.span()), Interval: iv})
		cur = &out[len(out)-1]
		cur.Points = append(cur.Points, PointRead{ID: p.id, Offset: 0, b: p})
		end = pe
	}
	return out
}

// subRequest builds a request over the given points of r (sorted by
// offset), with its own address range.
func subRequest(r *Request, pts []PointRead, note string) Request {
	start := int(pts[0].b.m.Address)
	end := start
	for _, p := range pts {
		end = max(end, int(p.b.m.Address)+p.b.span())
	}
	n := Request{Unit: r.Unit, Function: r.Function, Address: uint16(start), Quantity: uint16(end - start), Interval: r.Interval, Note: note}
	n.Points = make([]PointRead, len(pts))
	for i, p := range pts {
		n.Points[i] = PointRead{ID: p.ID, Offset: int(p.b.m.Address) - start, b: p.b}
	}
	return n
}

// expectBytes is the size of a correct reply's data: 2 bytes per register,
// or one bit per coil rounded up to bytes. Any other size fails every
// point of the request.
func (r *Request) expectBytes() int {
	if isBitFunction(r.Function) {
		return (int(r.Quantity) + 7) / 8
	}
	return int(r.Quantity) * 2
}

// decodePoint returns the raw value of one point from a reply.
func decodePoint(r *Request, p *PointRead, data []byte) (float64, error) {
	m := &p.b.m
	if isBitFunction(r.Function) {
		i := p.Offset
		if i/8 >= len(data) {
			return 0, errShortData
		}
		if data[i/8]>>(i%8)&1 == 1 {
			return 1, nil
		}
		return 0, nil
	}
	lo := p.Offset * 2
	hi := lo + m.Registers()*2
	if lo < 0 || hi > len(data) {
		return 0, errShortData
	}
	b := data[lo:hi]
	if m.Bit >= 0 {
		on, err := DecodeBit(b, uint8(m.Bit))
		if on {
			return 1, err
		}
		return 0, err
	}
	if m.DataType == model.String {
		s, err := DecodeString(b, m.Length, m.ByteOrder)
		if err != nil {
			return 0, err
		}
		return parseNumber(s)
	}
	return DecodeRegisters(b, m.DataType, m.ByteOrder)
}
