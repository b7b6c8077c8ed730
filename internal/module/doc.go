// Package module loads, checks and expands the master's declarative task
// modules: one YAML file per module, modules/Mid_<id>.yaml.
//
// # File format
//
//	id: 1001                      # must equal the <id> in the file name
//	name: 查看系统日志              # module_list.module_name, at most 20 characters
//	caption: 查看所选服务器的操作系统日志信息  # at most 255 characters, optional
//	backend: ""                   # optional: ssh, local, ansible, salt or func
//	timeout: 60s                  # optional per-host run timeout (Go duration)
//	params:
//	  - name: sys_param_1         # [A-Za-z_][A-Za-z0-9_]*, at most 64 bytes
//	    label: 返回信息行数
//	    type: number              # number | text | choice | boolean | fixed
//	    min: 1                    # number: min and max are required
//	    max: 999
//	    default: "50"             # optional; a parameter without default is required
//	  - name: sys_param_2
//	    type: text
//	    pattern: '[a-z0-9.-]+'    # Go RE2, anchored at both ends implicitly; optional
//	    max_length: 64            # required, in characters, 1..4096
//	  - name: sys_param_4
//	    type: text
//	    multiline: true           # line feeds allowed (CR LF arrives as LF)
//	    max_length: 2000
//	  - name: sys_param_5
//	    type: boolean             # a checkbox: value when checked, "" when not
//	    value: "-f"
//	    default: "-f"             # optional: checked by default
//	  - name: sys_param_6
//	    type: fixed               # a legacy hidden input: only this value
//	    value: /var/log
//	  - name: sys_param_3
//	    type: choice
//	    options:
//	      - value: nginx
//	        label: nginx
//	        vars: {unit: nginx, conf: /etc/nginx/nginx.conf}
//	steps:
//	  - run: tail -n {{sys_param_1}} /var/log/syslog
//	  - copy: {src: "files/1005/{{sys_param_3.file}}", dest: "{{sys_param_3.dest}}", mode: "0644"}
//	    run: "{{sys_param_3.after}}"   # a step may copy, run, or copy then run
//
// Parsing is strict: unknown keys, duplicate keys, wrong types and a second
// YAML document are errors. Every problem is reported with the file and the
// field it concerns.
//
// # Templates
//
// The run command and the copy src and dest are templates:
//
//   - {{p}} inserts the validated value of parameter p, always single-quoted
//     for a POSIX shell (numbers too). It may appear only where the shell
//     would honour those quotes: outside any quotes, backquotes, $(( )) and
//     here-documents (inside $(...) is fine), and never in a command that
//     uses eval. A text parameter is further refused in a command using
//     [[ ]], (( )), let, declare or typeset (bash evaluates text there as
//     arithmetic, running $(...) inside it) or running ssh, su, xargs or a
//     shell (sh, bash, ...), which parse their arguments again. The loader
//     refuses any other placement, because a single-quoted value in those
//     places is no longer inert. A multi-line text value is also refused in
//     a comment, where its second line would run. It is not allowed in copy
//     src or dest.
//   - {{p.var}} inserts the var named var of the option chosen for choice
//     parameter p, verbatim. Vars are trusted text written by the module
//     author on the master's disk; a var used by a template must exist on
//     every option of p.
//
// A reference to an undeclared parameter, an unclosed {{ or anything other
// than a name or name.var between the braces is a load error. There is no
// escape for a literal "{{".
//
// A copy src is relative to the modules directory, must stay inside it (no
// absolute path, no "..", no symlink out) and must name an existing regular
// file for every option; a copy dest must be an absolute, clean path for
// every option. Both are checked at load time.
//
// # Parameter validation
//
// The parameter schema is internal/param's, shared with the legacy forms
// and the web tier. ValidateParams refuses an unknown parameter name, a
// missing parameter without default (a boolean without default is
// unchecked, a fixed one is its value), a choice that is not one of the
// options (so, as in the original OMServer, an unknown name runs nothing),
// a number that is not a base-10 integer within [min, max], a boolean
// that is neither its value nor "", a fixed parameter that is not its
// value, and a text value that does not match its pattern, is longer than
// max_length, is not UTF-8 or contains any control character or line break
// (a multi-line text: any control character but the line feed), whatever
// the pattern says. Errors wrap task.ErrInvalidParams. Expand validates
// before it expands, so a module whose parameters fail validation yields
// no steps.
package module
