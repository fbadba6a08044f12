package tokenizer

import "strings"

// addedToken is an entry of tokenizer.json's added_tokens: matched as a whole before the
// model sees the text.
type addedToken struct {
	content    string
	id         int32
	special    bool // dropped by Decode(…, skipSpecial); not matched with SplitSpecialTokens
	normalized bool // matched in the normalized text rather than the raw text
}

// matcher finds added tokens in text, leftmost first and longest among those that start at
// the same place (tokenizers' aho-corasick LeftmostLongest).
type matcher struct {
	first [256]bool
	// byFirst lists the tokens by their first byte, longest first.
	byFirst [256][]*addedToken
	// only is the first byte shared by all tokens (Qwen's all start with '<'), or -1.
	only int
}

func newMatcher(toks []*addedToken) *matcher {
	m := &matcher{}
	for _, t := range toks {
		if t.content == "" {
			continue
		}
		c := t.content[0]
		m.first[c] = true
		l := append(m.byFirst[c], t)
		for i := len(l) - 1; i > 0 && len(l[i].content) > len(l[i-1].content); i-- {
			l[i], l[i-1] = l[i-1], l[i]
		}
		m.byFirst[c] = l
	}
	m.only = -1
	for c, f := range m.first {
		if f && m.only == -1 {
			m.only = c
		} else if f {
			m.only = -2
		}
	}
	m.only = max(m.only, -1)
	return m
}

// find returns the first added token in s at or after from, and where it starts; nil when
// none. With skipSpecial, tokens marked special are not matched.
func (m *matcher) find(s string, from int, skipSpecial bool) (*addedToken, int) {
	for i := from; i < len(s); i++ {
		if m.only >= 0 {
			k := strings.IndexByte(s[i:], byte(m.only))
			if k < 0 {
				return nil, -1
			}
			i += k
		} else if !m.first[s[i]] {
			continue
		}
		for _, t := range m.byFirst[s[i]] {
			if skipSpecial && t.special {
				continue
			}
			if strings.HasPrefix(s[i:], t.content) {
				return t, i
			}
		}
	}
	return nil, -1
}

func (m *matcher) empty() bool {
	for _, f := range m.first {
		if f {
			return false
		}
	}
	return true
}
