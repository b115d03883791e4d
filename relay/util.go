package relay

import (
	"path"
	"sort"
)

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// globs is a list of path.Match patterns; an empty list matches everything.
type globs []string

func (g globs) match(s string) bool {
	if len(g) == 0 {
		return true
	}
	for _, p := range g {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// validGlob reports whether p is a well-formed path.Match pattern.
func validGlob(p string) error {
	_, err := path.Match(p, "")
	return err
}
