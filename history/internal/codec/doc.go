// Package codec encodes and decodes the immutable blocks of the history
// store: one series, a time range, timestamps in milliseconds, float64
// values and a quality byte per sample.
//
// Three codecs exist. Delta detects the decimal resolution of the values,
// stores them as scaled integers with delta or delta-of-delta coding and the
// millisecond timestamps with delta-of-delta, bit-packed in groups of 64.
// Gorilla is github.com/dgryski/go-tsz (whole-second timestamps only).
// Raw keeps the timestamps like Delta and the values as 8-byte floats; it is
// the fallback when neither applies (NaN with sub-second timestamps).
// Encode tries Delta and Gorilla and keeps the smaller; the payload may then
// be deflated when that makes it smaller still.
package codec
