// Package tokenizer is the Qwen3 tokenizer: it loads a Hugging Face tokenizer.json (NFC, the
// Qwen Split pre-tokenizer, byte-level BPE, added tokens) and encodes and decodes exactly as HF does.
package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes text to token ids and back. It is safe for concurrent use.
//
// Encode is transformers' tokenizer(text, add_special_tokens=False)["input_ids"] (Qwen3 adds
// no BOS or EOS either way); the post_processor of tokenizer.json is not applied.
//
// Invalid UTF-8 in the input is first repaired as Python's errors="replace" does: each
// maximal invalid subsequence becomes one U+FFFD. (Hugging Face tokenizers only ever receives
// valid strings, so there is no behaviour to match; this one is what a Python caller that
// decodes bytes with errors="replace" gets.)
type Tokenizer struct {
	model bpe
	form  *norm.Form // nil: no normalizer

	rawAdded  *matcher // added tokens with normalized: false, matched in the raw text
	normAdded *matcher // added tokens with normalized: true, matched after normalization

	vocab   map[string]int32 // token as written in tokenizer.json → id, added tokens included
	idBytes [][]byte         // id → the bytes it decodes to; nil for ids that have no token
	special []bool           // id → an added token marked special

	eos, pad, bos int32
	splitSpecial  bool
	chatTemplate  string

	pool chan *scratch
}

// Options change how one call encodes.
type Options struct {
	// SplitSpecialTokens tokenizes the added tokens marked special (<|im_start|>,
	// <|endoftext|>, …) as plain text, as transformers' split_special_tokens=True does; the
	// others (<think>, <tool_call>, …) are still recognised.
	SplitSpecialTokens bool
}

// Load reads tokenizer.json and, when present, tokenizer_config.json from a model folder.
func Load(dir string) (*Tokenizer, error) {
	cfg := filepath.Join(dir, "tokenizer_config.json")
	if _, err := os.Stat(cfg); errors.Is(err, os.ErrNotExist) {
		cfg = ""
	}
	return LoadFiles(filepath.Join(dir, "tokenizer.json"), cfg)
}

// LoadFiles reads a tokenizer.json and a tokenizer_config.json (configPath may be "": then no
// eos/pad/bos tokens are known and split_special_tokens is false).
func LoadFiles(tokenizerPath, configPath string) (*Tokenizer, error) {
	data, err := os.ReadFile(tokenizerPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := parseTokenizer(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", tokenizerPath, err)
	}
	if configPath != "" {
		data, err := os.ReadFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if err := t.parseConfig(data); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", configPath, err)
		}
	}
	return t, nil
}

type fileJSON struct {
	AddedTokens []struct {
		ID         int32  `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		Lstrip     bool   `json:"lstrip"`
		Rstrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        json.RawMessage `json:"model"`
}

// bpeJSON is tokenizer.json's model when its type is BPE.
type bpeJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         string          `json:"end_of_word_suffix"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   json.RawMessage `json:"vocab"` // decoded once the type is known
	Merges                  json.RawMessage `json:"merges"`
}

// component is the "type" and fields of a normalizer, pre-tokenizer or decoder.
type component struct {
	Type          string      `json:"type"`
	Normalizers   []component `json:"normalizers"`
	Pretokenizers []component `json:"pretokenizers"`
	Pattern       struct{ Regex, String *string }
	Behavior      string `json:"behavior"`
	Invert        bool   `json:"invert"`
	AddPrefix     bool   `json:"add_prefix_space"`
	UseRegex      *bool  `json:"use_regex"`
}

func parseTokenizer(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	t := &Tokenizer{eos: -1, pad: -1, bos: -1, pool: make(chan *scratch, runtime.GOMAXPROCS(0))}
	var err error
	if t.form, err = parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := checkPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	m := &bpeJSON{}
	if err := json.Unmarshal(f.Model, m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if m.Type != "BPE" && m.Type != "" {
		return nil, fmt.Errorf("model type %q is not supported (only byte-level BPE)", m.Type)
	}
	vocab := map[string]int32{}
	if err := json.Unmarshal(m.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("model.vocab: %w", err)
	}
	switch {
	case m.Dropout != nil && *m.Dropout != 0:
		return nil, errors.New("BPE dropout is not supported")
	case m.ByteFallback:
		return nil, errors.New("BPE byte_fallback is not supported (a SentencePiece-style BPE; only byte-level BPE is)")
	case m.ContinuingSubwordPrefix != "" || m.EndOfWordSuffix != "":
		return nil, errors.New("BPE continuing_subword_prefix/end_of_word_suffix are not supported")
	case m.IgnoreMerges:
		return nil, errors.New("BPE ignore_merges is not supported")
	case len(vocab) == 0:
		return nil, errors.New("model.vocab is empty")
	}
	size := int32(0)
	for _, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab has negative id %d", id)
		}
		size = max(size, id+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has negative id %d", a.Content, a.ID)
		}
		size = max(size, a.ID+1)
	}
	t.vocab = make(map[string]int32, len(vocab)+len(f.AddedTokens))
	t.idBytes = make([][]byte, size)
	t.special = make([]bool, size)
	for tok, id := range vocab {
		t.vocab[tok] = id
		raw, ok := byteLevelBytes(tok)
		if !ok {
			raw = []byte(tok) // the ByteLevel decoder keeps such a token's own bytes
		}
		t.idBytes[id] = raw
	}
	for b := 0; b < 256; b++ {
		id, ok := vocab[string(byteToRune[b])]
		if !ok {
			return nil, fmt.Errorf("model.vocab lacks the byte-level token %q for byte 0x%02X", string(byteToRune[b]), b)
		}
		t.model.byteTok[b] = id
	}
	if t.model.merges, err = parseMerges(m.Merges, vocab); err != nil {
		return nil, err
	}
	var raw, normed []*addedToken
	for _, a := range f.AddedTokens {
		if a.SingleWord || a.Lstrip || a.Rstrip {
			return nil, fmt.Errorf("added token %q: single_word/lstrip/rstrip are not supported", a.Content)
		}
		if a.Content == "" {
			return nil, fmt.Errorf("added token %d has empty content", a.ID)
		}
		if old, ok := vocab[a.Content]; ok && old != a.ID {
			return nil, fmt.Errorf("added token %q has id %d but the vocabulary gives it %d", a.Content, a.ID, old)
		}
		tok := &addedToken{content: a.Content, id: a.ID, special: a.Special, normalized: a.Normalized}
		t.vocab[a.Content] = a.ID
		dec, ok := byteLevelBytes(a.Content)
		if !ok {
			dec = []byte(a.Content)
		}
		t.idBytes[a.ID] = dec
		t.special[a.ID] = a.Special
		if a.Normalized && t.form != nil {
			normed = append(normed, tok)
		} else {
			raw = append(raw, tok)
		}
	}
	t.rawAdded, t.normAdded = newMatcher(raw), newMatcher(normed)
	return t, nil
}

// parseMerges reads model.merges: pairs [["a", "b"], …] or strings ["a b", …].
func parseMerges(data json.RawMessage, vocab map[string]int32) (map[uint64]uint64, error) {
	var pairs [][2]string
	if err := json.Unmarshal(data, &pairs); err != nil {
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, fmt.Errorf("model.merges: %w", err)
		}
		pairs = make([][2]string, len(items))
		for i, it := range items {
			var line string
			if err := json.Unmarshal(it, &line); err != nil {
				if err := json.Unmarshal(it, &pairs[i]); err != nil {
					return nil, fmt.Errorf("model.merges[%d]: %w", i, err)
				}
				continue
			}
			a, b, ok := strings.Cut(line, " ")
			if !ok {
				return nil, fmt.Errorf("model.merges[%d] %q is not two tokens", i, line)
			}
			pairs[i] = [2]string{a, b}
		}
	}
	merges := make(map[uint64]uint64, len(pairs))
	for rank, p := range pairs {
		a, okA := vocab[p[0]]
		b, okB := vocab[p[1]]
		c, okC := vocab[p[0]+p[1]]
		if !okA || !okB || !okC {
			return nil, fmt.Errorf("model.merges[%d] %q + %q: token not in the vocabulary", rank, p[0], p[1])
		}
		key := uint64(uint32(a))<<32 | uint64(uint32(b))
		if _, dup := merges[key]; !dup { // the first (lowest) rank wins, as in tokenizers
			merges[key] = uint64(rank)<<32 | uint64(uint32(c))
		}
	}
	return merges, nil
}

func parseNormalizer(data json.RawMessage) (*norm.Form, error) {
	if len(data) == 0 || string(data) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	if c.Type == "Sequence" {
		switch len(c.Normalizers) {
		case 0:
			return nil, nil
		case 1:
			c = c.Normalizers[0]
		default:
			return nil, fmt.Errorf("normalizer: a Sequence of %d normalizers is not supported (one Unicode normal form at most)", len(c.Normalizers))
		}
	}
	forms := map[string]norm.Form{"NFC": norm.NFC, "NFD": norm.NFD, "NFKC": norm.NFKC, "NFKD": norm.NFKD}
	f, ok := forms[c.Type]
	if !ok {
		return nil, fmt.Errorf("normalizer type %q is not supported (NFC, NFD, NFKC, NFKD or none)", c.Type)
	}
	return &f, nil
}

// checkPreTokenizer accepts Qwen2/Qwen3's pre-tokenizer: the Split regex, isolated, then
// ByteLevel without its own regex and without a prefix space.
func checkPreTokenizer(data json.RawMessage) error {
	var c component
	if err := json.Unmarshal(data, &c); err != nil || len(data) == 0 || string(data) == "null" {
		return errors.New("pre_tokenizer: missing (only the Qwen Split + ByteLevel pre-tokenizer is supported)")
	}
	if c.Type != "Sequence" || len(c.Pretokenizers) != 2 {
		return fmt.Errorf("pre_tokenizer type %q is not supported (only Sequence[Split(Qwen pattern), ByteLevel])", c.Type)
	}
	s, b := c.Pretokenizers[0], c.Pretokenizers[1]
	if s.Type != "Split" {
		return fmt.Errorf("pre_tokenizer: %q before ByteLevel is not supported (only Split with the Qwen pattern)", s.Type)
	}
	if s.Pattern.Regex == nil || *s.Pattern.Regex != qwenPattern {
		pat := "<string pattern>"
		if s.Pattern.Regex != nil {
			pat = *s.Pattern.Regex
		}
		return fmt.Errorf("pre_tokenizer: Split pattern %q is not supported (only Qwen's %q)", pat, qwenPattern)
	}
	if s.Behavior != "Isolated" || s.Invert {
		return fmt.Errorf("pre_tokenizer: Split behavior %q invert=%v is not supported (only Isolated, not inverted)", s.Behavior, s.Invert)
	}
	if b.Type != "ByteLevel" || b.AddPrefix || (b.UseRegex != nil && *b.UseRegex) {
		return fmt.Errorf("pre_tokenizer: %q after Split is not supported (only ByteLevel with add_prefix_space and use_regex false)", b.Type)
	}
	return nil
}

func checkDecoder(data json.RawMessage) error {
	var c component
	if err := json.Unmarshal(data, &c); err != nil || c.Type != "ByteLevel" {
		return fmt.Errorf("decoder %s is not supported (only ByteLevel)", bytes.TrimSpace(data))
	}
	return nil
}

// parseConfig reads the special tokens and split_special_tokens from tokenizer_config.json.
func (t *Tokenizer) parseConfig(data []byte) error {
	var c struct {
		EOS          json.RawMessage `json:"eos_token"`
		Pad          json.RawMessage `json:"pad_token"`
		BOS          json.RawMessage `json:"bos_token"`
		SplitSpecial bool            `json:"split_special_tokens"`
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		raw  json.RawMessage
		dst  *int32
	}{{"eos_token", c.EOS, &t.eos}, {"pad_token", c.Pad, &t.pad}, {"bos_token", c.BOS, &t.bos}} {
		content, err := tokenContent(s.raw)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if content == "" {
			continue
		}
		id, ok := t.vocab[content]
		if !ok {
			return fmt.Errorf("%s %q is not a token", s.name, content)
		}
		*s.dst = id
	}
	t.splitSpecial = c.SplitSpecial
	_ = json.Unmarshal(c.ChatTemplate, &t.chatTemplate) // a list of named templates is left out
	return nil
}

// tokenContent reads a special token given as a string, {"content": …} or null.
func tokenContent(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct{ Content string }
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", err
	}
	return obj.Content, nil
}

// VocabSize is one more than the largest token id (151669 for Qwen3: the model's embedding
// table may be larger).
func (t *Tokenizer) VocabSize() int { return len(t.idBytes) }

// TokenID returns the id of a token written as in tokenizer.json (byte-level alphabet for the
// vocabulary, "Ġworld"; plain text for added tokens, "<|im_end|>").
func (t *Tokenizer) TokenID(token string) (int32, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// EOS is the id of tokenizer_config.json's eos_token, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// Pad is the id of tokenizer_config.json's pad_token, or -1.
func (t *Tokenizer) Pad() int32 { return t.pad }

// BOS is the id of tokenizer_config.json's bos_token, or -1 (Qwen3 has none).
func (t *Tokenizer) BOS() int32 { return t.bos }

// IsSpecial reports whether id is an added token marked special (skipped by Decode with
// skipSpecial).
func (t *Tokenizer) IsSpecial(id int32) bool {
	return id >= 0 && int(id) < len(t.special) && t.special[id]
}

// ChatTemplate is tokenizer_config.json's chat_template when it is a single string.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// Encode tokenizes text with split_special_tokens as tokenizer_config.json sets it.
func (t *Tokenizer) Encode(text string) []int32 {
	return t.EncodeWith(text, Options{SplitSpecialTokens: t.splitSpecial})
}

// EncodeWith tokenizes text with the given options.
func (t *Tokenizer) EncodeWith(text string, o Options) []int32 {
	sc := t.getScratch()
	ids := t.encode(nil, text, o, sc, nil)
	t.putScratch(sc)
	return ids
}

// EncodeOffsets tokenizes text (SplitSpecialTokens false) and also returns, for each token,
// the byte offset in text where it ends. A token made from text that normalization changed
// ends where that normalization segment ends.
func (t *Tokenizer) EncodeOffsets(text string) (ids []int32, ends []int) {
	sc := t.getScratch()
	ids = t.encode(nil, text, Options{}, sc, &ends)
	t.putScratch(sc)
	return ids, ends
}

// EncodeBatch tokenizes texts on all cores; the result is in input order.
func (t *Tokenizer) EncodeBatch(texts []string) [][]int32 {
	out := make([][]int32, len(texts))
	o := Options{SplitSpecialTokens: t.splitSpecial}
	workers := min(runtime.GOMAXPROCS(0), len(texts))
	if workers <= 1 {
		for i, s := range texts {
			out[i] = t.EncodeWith(s, o)
		}
		return out
	}
	const chunk = 16
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := t.getScratch()
			defer t.putScratch(sc)
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(texts) {
					return
				}
				for i := lo; i < min(lo+chunk, len(texts)); i++ {
					out[i] = t.encode(nil, texts[i], o, sc, nil)
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func (t *Tokenizer) getScratch() *scratch {
	select {
	case sc := <-t.pool:
		return sc
	default:
		return newScratch()
	}
}

func (t *Tokenizer) putScratch(sc *scratch) {
	select {
	case t.pool <- sc:
	default:
	}
}

// encode appends the ids of text to dst; with ends non-nil it also appends their end offsets.
func (t *Tokenizer) encode(dst []int32, text string, o Options, sc *scratch, ends *[]int) []int32 {
	text = validUTF8(text) // offsets of repaired text are offsets in the repaired string
	for pos := 0; pos <= len(text); {
		tok, at := t.rawAdded.find(text, pos, o.SplitSpecialTokens)
		if tok == nil {
			at = len(text)
		}
		dst = t.encodeSegment(dst, text[pos:at], pos, o, sc, ends)
		if tok == nil {
			break
		}
		dst = append(dst, tok.id)
		pos = at + len(tok.content)
		if ends != nil {
			*ends = append(*ends, pos)
		}
	}
	return dst
}

// encodeSegment normalizes and tokenizes text that holds no raw added token; base is its
// offset in the whole text.
func (t *Tokenizer) encodeSegment(dst []int32, seg string, base int, o Options, sc *scratch, ends *[]int) []int32 {
	if seg == "" {
		return dst
	}
	normed, checkpoints := seg, []int(nil)
	if t.form != nil && !t.form.IsNormalString(seg) {
		if ends == nil {
			normed = t.form.String(seg)
		} else {
			normed, checkpoints = normalizeMapped(*t.form, seg)
		}
	}
	first := len(dst)
	for pos := 0; pos <= len(normed); {
		tok, at := (*addedToken)(nil), len(normed)
		if !t.normAdded.empty() {
			if tok, at = t.normAdded.find(normed, pos, o.SplitSpecialTokens); tok == nil {
				at = len(normed)
			}
		}
		dst = t.encodePlain(dst, normed[pos:at], sc)
		if tok == nil {
			break
		}
		dst = append(dst, tok.id)
		pos = at + len(tok.content)
	}
	if ends != nil {
		off := 0
		for _, id := range dst[first:] {
			off += len(t.idBytes[id])
			e := off
			if checkpoints != nil {
				e = mapOffset(checkpoints, off)
			}
			*ends = append(*ends, base+e)
		}
	}
	return dst
}

// encodePlain pre-tokenizes normalized text and runs BPE on each piece.
func (t *Tokenizer) encodePlain(dst []int32, s string, sc *scratch) []int32 {
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		piece := s[i:j]
		i = j
		if len(piece) == 1 {
			dst = append(dst, t.model.byteTok[piece[0]])
			continue
		}
		if len(piece) > cacheMaxWord {
			dst = t.model.encode(dst, piece, sc)
			continue
		}
		if ids, ok := sc.cache[piece]; ok {
			dst = append(dst, ids...)
			continue
		}
		n := len(dst)
		dst = t.model.encode(dst, piece, sc)
		if len(sc.cache) >= cacheWords {
			clear(sc.cache)
		}
		sc.cache[string([]byte(piece))] = append([]int32(nil), dst[n:]...)
	}
	return dst
}

// normalizeMapped normalizes seg and returns checkpoints: pairs (normalized end, seg end) at
// each normalization segment boundary, increasing.
func normalizeMapped(f norm.Form, seg string) (string, []int) {
	var it norm.Iter
	it.InitString(f, seg)
	var out []byte
	var cps []int
	for !it.Done() {
		out = append(out, it.Next()...)
		cps = append(cps, len(out), it.Pos())
	}
	return string(out), cps
}

// mapOffset maps an end offset in normalized text to the end of the first normalization
// segment that reaches it, in the original text.
func mapOffset(cps []int, off int) int {
	for k := 0; k < len(cps); k += 2 {
		if cps[k] >= off {
			return cps[k+1]
		}
	}
	return cps[len(cps)-1]
}

// Decode turns ids back into text: the tokens' bytes joined, invalid UTF-8 replaced by one
// U+FFFD per maximal invalid subsequence (as Hugging Face does). With skipSpecial the added
// tokens marked special are left out. Ids that name no token are skipped.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	var buf []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.idBytes) || (skipSpecial && t.special[id]) {
			continue
		}
		buf = append(buf, t.idBytes[id]...)
	}
	if utf8.Valid(buf) {
		return string(buf)
	}
	return string(appendLossy(nil, buf))
}
