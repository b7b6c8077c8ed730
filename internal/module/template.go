package module

import (
	"errors"
	"fmt"
	"strings"

	"github.com/omserver/omserver-go/internal/backend"
	"github.com/omserver/omserver-go/internal/param"
)

// segment is a piece of a parsed template: literal text, or a reference to
// a parameter ({{param}}) or to a var of its chosen option ({{param.var}}).
type segment struct {
	lit   string
	param string
	vr    string
	ref   bool
}

// parseTemplate splits s into literal text and {{...}} references.
func parseTemplate(s string) ([]segment, error) {
	var segs []segment
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if s != "" {
				segs = append(segs, segment{lit: s})
			}
			return segs, nil
		}
		if i > 0 {
			segs = append(segs, segment{lit: s[:i]})
		}
		rest := s[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return nil, errors.New(`unclosed "{{"`)
		}
		inner := strings.TrimSpace(rest[:j])
		param, vr, hasVar := strings.Cut(inner, ".")
		if !isIdent(param) || (hasVar && !isIdent(vr)) {
			return nil, fmt.Errorf("{{%s}} is not {{param}} or {{param.var}}", rest[:j])
		}
		segs = append(segs, segment{param: param, vr: vr, ref: true})
		s = rest[j+2:]
	}
}

// isIdent reports whether s is [A-Za-z_][A-Za-z0-9_]* of at most 64 bytes:
// the same rule as a parameter name.
func isIdent(s string) bool { return param.ValidName(s) }

// render expands segments. values holds validated parameter values; vars
// holds, per choice parameter, the vars of the chosen option. Plain
// references are single-quoted when quote is set and refused otherwise
// (copy paths accept only vars; the loader already enforces this).
func render(segs []segment, values map[string]string, vars map[string]map[string]string, quote bool) (string, error) {
	var b strings.Builder
	for _, sg := range segs {
		switch {
		case !sg.ref:
			b.WriteString(sg.lit)
		case sg.vr != "":
			v, ok := vars[sg.param][sg.vr]
			if !ok {
				return "", fmt.Errorf("{{%s.%s}}: no such var on the chosen option", sg.param, sg.vr)
			}
			b.WriteString(v)
		case quote:
			v, ok := values[sg.param]
			if !ok {
				return "", fmt.Errorf("{{%s}}: no value", sg.param)
			}
			b.WriteString(backend.ShellQuote(v))
		default:
			return "", fmt.Errorf("{{%s}}: a parameter value cannot be used here, only an option var", sg.param)
		}
	}
	return b.String(), nil
}

// Placeholders stand for quoted parameter values while the loader lexes a
// command: placeholder for number, choice, boolean and fixed values,
// textPlaceholder for single-line text, multiPlaceholder for multi-line
// text. NUL, SOH and STX never occur in a checked template or var.
const (
	placeholder      = '\x00'
	textPlaceholder  = '\x01'
	multiPlaceholder = '\x02'
)

func isPlaceholder(r rune) bool {
	return r == placeholder || r == textPlaceholder || r == multiPlaceholder
}

// textReparsers are words after which bash or another program parses its
// arguments again as code or arithmetic: a quoted text value there is not
// inert (bash evaluates a[$(cmd)] inside [[ -eq ]], (( )) and let; ssh,
// su -c, sh -c and xargs hand it to another shell).
const textReparsers = "eval let declare typeset ssh su xargs sh bash dash zsh ksh"

// shell lexer contexts.
const (
	ctxCommand     = iota // unquoted command text
	ctxSingle             // '...'
	ctxDouble             // "..."
	ctxBackquote          // `...`
	ctxDollarParen        // $(...)
	ctxArith              // $((...)): as if double-quoted, so single quotes are literal
	ctxArithParen         // (...) inside $((...))
)

var errHeredoc = errors.New("a {{param}} value must not be used after a here-document (<<): it would not stay quoted")

// checkPlacement lexes a POSIX sh command in which every quoted parameter
// value has been replaced by placeholder, and fails when a placeholder sits
// where a single-quoted word would not be inert: inside double quotes,
// backquotes, $(( )), a here-document, or in a command using eval; a text
// value also not in a command using [[ ]], (( )) or a program that parses
// its arguments again (textReparsers). It also fails
// on unterminated quotes. A multi-line text value is further refused in a
// comment, where its second line would be read as a command. It is
// deliberately conservative.
func checkPlacement(cmd string) error {
	hasPlaceholder := strings.ContainsFunc(cmd, isPlaceholder)
	if hasPlaceholder && containsWord(cmd, "eval") {
		return errors.New("a {{param}} value must not be used in a command containing eval")
	}
	if strings.ContainsRune(cmd, textPlaceholder) || strings.ContainsRune(cmd, multiPlaceholder) {
		if strings.Contains(cmd, "[[") || strings.Contains(cmd, "((") {
			return errors.New("a text {{param}} must not be used in a command with [[ ]] or (( )): bash evaluates text there as arithmetic, running $(...) inside it")
		}
		for _, w := range strings.Fields(textReparsers) {
			if containsWord(cmd, w) {
				return fmt.Errorf("a text {{param}} must not be used in a command that runs %q: it parses its arguments again", w)
			}
		}
	}
	stack := []int{ctxCommand}
	heredoc := false
	wordStart := true
	rs := []rune(cmd)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		top := stack[len(stack)-1]
		if r == '\\' && i+1 < len(rs) && isPlaceholder(rs[i+1]) {
			return errors.New("a {{param}} value must not follow a backslash: it would escape the opening quote")
		}
		if isPlaceholder(r) {
			if heredoc {
				return errHeredoc
			}
			// Backquotes anywhere outside: their end is found before the
			// value's quotes are seen. Quotes count up to the innermost
			// $(...), which starts a fresh quoting context.
			inner := true
			for k := len(stack) - 1; k >= 0; k-- {
				switch stack[k] {
				case ctxBackquote:
					return errors.New("a {{param}} value must not be inside backquotes; use $(...)")
				case ctxDollarParen:
					inner = false
				case ctxSingle, ctxDouble:
					if inner {
						return errors.New("a {{param}} value must not be inside quotes: it is inserted already single-quoted")
					}
				case ctxArith, ctxArithParen:
					if inner {
						return errors.New("a {{param}} value must not be inside $(( )): the shell ignores single quotes there; assign it to a variable first")
					}
				}
			}
			wordStart = false
			continue
		}
		dollarArith := r == '$' && i+2 < len(rs) && rs[i+1] == '(' && rs[i+2] == '('
		switch top {
		case ctxArith, ctxArithParen:
			switch {
			case r == '\\':
				i++
			case dollarArith:
				stack = append(stack, ctxArith)
				i += 2
			case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
				stack = append(stack, ctxDollarParen)
				i++
			case r == '`':
				stack = append(stack, ctxBackquote)
			case r == '(':
				stack = append(stack, ctxArithParen)
			case r == ')' && top == ctxArithParen:
				stack = stack[:len(stack)-1]
			case r == ')' && i+1 < len(rs) && rs[i+1] == ')':
				stack = stack[:len(stack)-1]
				i++
			}
			continue
		case ctxSingle:
			if r == '\'' {
				stack = stack[:len(stack)-1]
			}
			continue
		case ctxDouble:
			switch {
			case r == '\\':
				i++
			case r == '"':
				stack = stack[:len(stack)-1]
			case r == '`':
				stack = append(stack, ctxBackquote)
			case dollarArith:
				stack = append(stack, ctxArith)
				i += 2
			case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
				stack = append(stack, ctxDollarParen)
				i++
			}
			continue
		}
		// Command text, also inside `...` and $(...).
		switch {
		case r == '\\':
			i++
		case r == '\'':
			stack = append(stack, ctxSingle)
		case r == '"':
			stack = append(stack, ctxDouble)
		case r == '`':
			if top == ctxBackquote {
				stack = stack[:len(stack)-1]
			} else {
				stack = append(stack, ctxBackquote)
			}
		case dollarArith:
			stack = append(stack, ctxArith)
			i += 2
		case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
			stack = append(stack, ctxDollarParen)
			i++
		case r == ')' && top == ctxDollarParen:
			stack = stack[:len(stack)-1]
		case r == '<' && i+1 < len(rs) && rs[i+1] == '<':
			heredoc = true
			i++
		case r == '#' && wordStart:
			for i+1 < len(rs) && rs[i+1] != '\n' {
				i++
				// After <<, this line may be a here-document body, not a comment.
				if heredoc && isPlaceholder(rs[i]) {
					return errHeredoc
				}
				if rs[i] == multiPlaceholder {
					return errors.New("a multi-line {{param}} must not be used in a comment: its second line would run as a command")
				}
			}
		}
		wordStart = strings.ContainsRune(" \t\n;&|()<>", r)
	}
	if len(stack) != 1 {
		return errors.New("unterminated quote, backquote, $( or $(( in command")
	}
	return nil
}

// containsWord reports whether w occurs in s as a whole word or as the
// last element of a path (/bin/sh).
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		before := start == 0 || !isWordByte(s[start-1])
		after := end == len(s) || !isWordByte(s[end])
		if before && after {
			return true
		}
		i = start + 1
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
