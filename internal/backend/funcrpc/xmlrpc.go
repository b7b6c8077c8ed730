package funcrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A methodResponse decoder for the XML-RPC specification
// (http://xmlrpc.com/spec.md), written against encoding/xml so that it is
// strict, bounded in nesting, and decodes <base64> and the <nil/> extension
// that Python's xmlrpclib emits. Values become int64, bool, string, float64,
// []byte (base64), nil, []any (array) or map[string]any (struct);
// dateTime.iso8601 is kept as its text.

// maxDepth bounds array/struct nesting; Func answers are two levels deep.
const maxDepth = 32

// Fault is an XML-RPC fault answer.
type Fault struct {
	Code   int64
	String string
}

func (f *Fault) Error() string { return fmt.Sprintf("XML-RPC fault %d: %s", f.Code, f.String) }

// decodeResponse parses a methodResponse into its single parameter, or the
// fault it carries. Bytes that are not UTF-8 (a Python 2 minion copies a
// command's raw output into the XML) are replaced by U+FFFD first, so such
// output still reaches the operator instead of failing the whole answer.
func decodeResponse(body []byte) (any, *Fault, error) {
	if !bytes.Equal(bytes.ToValidUTF8(body, nil), body) {
		body = bytes.ToValidUTF8(body, []byte("\uFFFD"))
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	p := &parser{d: d}
	start, err := p.nextElement()
	if err != nil {
		return nil, nil, fmt.Errorf("XML-RPC answer: %w", err)
	}
	if start.Name.Local != "methodResponse" {
		return nil, nil, fmt.Errorf("XML-RPC answer: root element is <%s>, want <methodResponse>", start.Name.Local)
	}
	inner, err := p.nextElement()
	if err != nil {
		return nil, nil, fmt.Errorf("XML-RPC answer: %w", err)
	}
	switch inner.Name.Local {
	case "params":
		param, err := p.nextElement()
		if err != nil {
			return nil, nil, fmt.Errorf("XML-RPC answer: %w", err)
		}
		if param.Name.Local != "param" {
			return nil, nil, fmt.Errorf("XML-RPC answer: <params> holds <%s>, want <param>", param.Name.Local)
		}
		v, err := p.valueElement(0)
		if err != nil {
			return nil, nil, fmt.Errorf("XML-RPC answer: %w", err)
		}
		if err := p.closeAll("param", "params", "methodResponse"); err != nil {
			return nil, nil, fmt.Errorf("XML-RPC answer: %w", err)
		}
		return v, nil, nil
	case "fault":
		v, err := p.valueElement(0)
		if err != nil {
			return nil, nil, fmt.Errorf("XML-RPC fault: %w", err)
		}
		if err := p.closeAll("fault", "methodResponse"); err != nil {
			return nil, nil, fmt.Errorf("XML-RPC fault: %w", err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, nil, errors.New("XML-RPC fault: value is not a struct")
		}
		str, ok := m["faultString"].(string)
		if !ok {
			return nil, nil, errors.New("XML-RPC fault: struct lacks a string faultString")
		}
		// The specification says int; some servers send the code as a string.
		var code int64
		switch c := m["faultCode"].(type) {
		case int64:
			code = c
		case string:
			code, _ = strconv.ParseInt(strings.TrimSpace(c), 10, 64)
		}
		return nil, &Fault{Code: code, String: str}, nil
	}
	return nil, nil, fmt.Errorf("XML-RPC answer: <methodResponse> holds <%s>, want <params> or <fault>", inner.Name.Local)
}

type parser struct{ d *xml.Decoder }

// token returns the next token that matters: comments, processing
// instructions and directives are skipped.
func (p *parser) token() (xml.Token, error) {
	for {
		t, err := p.d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("unexpected end of document")
			}
			return nil, err
		}
		switch t.(type) {
		case xml.Comment, xml.ProcInst, xml.Directive:
			continue
		}
		return t, nil
	}
}

// nextElement skips whitespace and returns the next start element; any
// other token is an error.
func (p *parser) nextElement() (xml.StartElement, error) {
	el, end, err := p.childOrEnd("")
	if err == nil && end != "" {
		err = fmt.Errorf("unexpected </%s>", end)
	}
	return el, err
}

// childOrEnd skips whitespace inside parent and returns either the next
// child's start element or, when parent closes, its name in end. Text is
// an error.
func (p *parser) childOrEnd(parent string) (el xml.StartElement, end string, err error) {
	for {
		t, err := p.token()
		if err != nil {
			return xml.StartElement{}, "", err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, "", nil
		case xml.EndElement:
			return xml.StartElement{}, t.Name.Local, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				if parent != "" {
					return xml.StartElement{}, "", fmt.Errorf("unexpected text %q in <%s>", truncate(string(t)), parent)
				}
				return xml.StartElement{}, "", fmt.Errorf("unexpected text %q", truncate(string(t)))
			}
		}
	}
}

// closeElement skips whitespace and expects </name>.
func (p *parser) closeElement(name string) error {
	el, end, err := p.childOrEnd(name)
	switch {
	case err != nil:
		return err
	case end == "":
		return fmt.Errorf("unexpected <%s>, want </%s>", el.Name.Local, name)
	case end != name:
		return fmt.Errorf("unexpected </%s>, want </%s>", end, name)
	}
	return nil
}

func (p *parser) closeAll(names ...string) error {
	for _, n := range names {
		if err := p.closeElement(n); err != nil {
			return err
		}
	}
	return nil
}

// valueElement reads <value>...</value>.
func (p *parser) valueElement(depth int) (any, error) {
	start, err := p.nextElement()
	if err != nil {
		return nil, err
	}
	if start.Name.Local != "value" {
		return nil, fmt.Errorf("<%s> where a <value> belongs", start.Name.Local)
	}
	return p.valueBody(depth)
}

// valueBody reads what follows <value>: a typed element, or bare text
// (a string, per the specification).
func (p *parser) valueBody(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("values nested deeper than %d", maxDepth)
	}
	var text strings.Builder
	for {
		t, err := p.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement: // </value> with no type element
			return text.String(), nil
		case xml.StartElement:
			if strings.TrimSpace(text.String()) != "" {
				return nil, fmt.Errorf("text and <%s> mixed in one value", t.Name.Local)
			}
			v, err := p.typed(t.Name.Local, depth)
			if err != nil {
				return nil, err
			}
			return v, p.closeElement("value")
		}
	}
}

func (p *parser) typed(kind string, depth int) (any, error) {
	switch kind {
	case "array":
		return p.array(depth)
	case "struct":
		return p.structure(depth)
	case "nil":
		return nil, p.closeElement("nil")
	}
	s, err := p.text(kind)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "string":
		return s, nil
	case "i4", "int", "i8":
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad <%s> %q", kind, truncate(s))
		}
		return n, nil
	case "boolean":
		switch strings.TrimSpace(s) {
		case "1":
			return true, nil
		case "0":
			return false, nil
		}
		return nil, fmt.Errorf("bad <boolean> %q", truncate(s))
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("bad <double> %q", truncate(s))
		}
		return f, nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("bad <base64>: %w", err)
		}
		return b, nil
	case "dateTime.iso8601":
		return s, nil
	}
	return nil, fmt.Errorf("unknown value type <%s>", kind)
}

// text reads character data up to </name>; nested elements are an error.
func (p *parser) text(name string) (string, error) {
	var b strings.Builder
	for {
		t, err := p.token()
		if err != nil {
			return "", err
		}
		switch t := t.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			if t.Name.Local != name {
				return "", fmt.Errorf("unexpected </%s> in <%s>", t.Name.Local, name)
			}
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> in <%s>", t.Name.Local, name)
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	data, err := p.nextElement()
	if err != nil {
		return nil, err
	}
	if data.Name.Local != "data" {
		return nil, fmt.Errorf("<array> holds <%s>, want <data>", data.Name.Local)
	}
	out := []any{}
	for {
		el, end, err := p.childOrEnd("data")
		if err != nil {
			return nil, err
		}
		if end != "" { // </data>
			return out, p.closeElement("array")
		}
		if el.Name.Local != "value" {
			return nil, fmt.Errorf("<data> holds <%s>, want <value>", el.Name.Local)
		}
		v, err := p.valueBody(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func (p *parser) structure(depth int) (any, error) {
	out := map[string]any{}
	for {
		el, end, err := p.childOrEnd("struct")
		if err != nil {
			return nil, err
		}
		if end != "" { // </struct>
			return out, nil
		}
		if el.Name.Local != "member" {
			return nil, fmt.Errorf("<struct> holds <%s>, want <member>", el.Name.Local)
		}
		name, err := p.nextElement()
		if err != nil {
			return nil, err
		}
		if name.Name.Local != "name" {
			return nil, fmt.Errorf("<member> starts with <%s>, want <name>", name.Name.Local)
		}
		key, err := p.text("name")
		if err != nil {
			return nil, err
		}
		v, err := p.valueElement(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.closeElement("member"); err != nil {
			return nil, err
		}
		out[key] = v
	}
}

func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
