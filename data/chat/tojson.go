package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// toJSON re-serializes a JSON value as transformers' tojson filter does,
// json.dumps(x, ensure_ascii=False): separators ", " and ": ", keys in input order (a repeated
// key keeps its first place and last value, like a Python dict), non-ASCII and <>&' raw,
// integers as Python ints and other numbers as Python float reprs.
func toJSON(raw json.RawMessage) (string, error) {
	if !json.Valid(raw) {
		return "", fmt.Errorf("invalid JSON %.40q", raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	val, err := readValue(dec)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := val.write(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// jsonValue is a decoded JSON value that remembers the order of object keys.
type jsonValue struct {
	kind   byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	str    string
	num    json.Number
	b      bool
	keys   []string
	values []jsonValue
}

func readValue(dec *json.Decoder) (jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return jsonValue{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := jsonValue{kind: 'o'}
			index := map[string]int{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return v, err
				}
				key := kt.(string)
				val, err := readValue(dec)
				if err != nil {
					return v, err
				}
				if i, dup := index[key]; dup {
					v.values[i] = val
					continue
				}
				index[key] = len(v.keys)
				v.keys = append(v.keys, key)
				v.values = append(v.values, val)
			}
			_, err := dec.Token() // '}'
			return v, err
		case '[':
			v := jsonValue{kind: 'a'}
			for dec.More() {
				val, err := readValue(dec)
				if err != nil {
					return v, err
				}
				v.values = append(v.values, val)
			}
			_, err := dec.Token() // ']'
			return v, err
		}
	case string:
		return jsonValue{kind: 's', str: t}, nil
	case json.Number:
		return jsonValue{kind: 'n', num: t}, nil
	case bool:
		return jsonValue{kind: 'b', b: t}, nil
	case nil:
		return jsonValue{kind: 'z'}, nil
	}
	return jsonValue{}, fmt.Errorf("unexpected JSON token %v", tok)
}

func (v jsonValue) write(b *strings.Builder) error {
	switch v.kind {
	case 'o':
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writePyString(b, k)
			b.WriteString(": ")
			if err := v.values[i].write(b); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, x := range v.values {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := x.write(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case 's':
		writePyString(b, v.str)
	case 'n':
		s, err := pyNumber(string(v.num))
		if err != nil {
			return err
		}
		b.WriteString(s)
	case 'b':
		if v.b {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case 'z':
		b.WriteString("null")
	}
	return nil
}

// writePyString writes s as json.dumps(s, ensure_ascii=False) does.
func writePyString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if c < 0x20 {
				fmt.Fprintf(b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// pyNumber spells a JSON number as Python's json.dumps(json.loads(lit)) does: an integer
// literal stays an int, anything with a fraction or exponent becomes a float and is written
// as repr(float).
func pyNumber(lit string) (string, error) {
	if !strings.ContainsAny(lit, ".eE") {
		if strings.TrimLeft(lit, "-0") == "" {
			return "0", nil // -0 is the int 0
		}
		return lit, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return "", err
	}
	return pyFloatRepr(f), nil
}

// pyFloatRepr is Python's repr(float): the shortest round-tripping digits, positional when
// the decimal point falls within -4 < exponent < 16, else scientific with a 2-digit exponent.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // value = 0.digits × 10^decpt
	if decpt <= -4 || decpt > 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if x < 0 {
			es, x = "-", -x
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, x)
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt < len(digits):
		return sign + digits[:decpt] + "." + digits[decpt:]
	default:
		return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	}
}
