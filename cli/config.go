package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The kinds of settings.
const (
	kindString   = "string"
	kindInt      = "int"
	kindBool     = "bool"
	kindDuration = "duration"
	kindList     = "list"
	kindObject   = "object"
)

// ErrConfig marks a setting that is refused: its error names the key, where
// the value came from and what is allowed.
var ErrConfig = errors.New("config")

// setting is one setting of uno serve (see settings).
type setting struct {
	name    string
	kind    string
	def     string // the default as written; empty: none (or zero)
	prodDef string // the default under --profile prod, if another
	zero    string // what 0 or empty stands for, if it takes a default
	doc     string
	allowed []string // the values allowed, if a fixed set
	atLeast int64    // an int's least value besides 0
	// positive: a duration must be above zero when set.
	positive bool
	// live settings apply again on SIGHUP; the others need a restart.
	live bool
	// fileOnly settings have no flag or environment variable.
	fileOnly bool
	// secret masks the value in uno config print.
	secret func(string) string
	// field points into serveOptions.
	field func(*serveOptions) any
	// check, if set, checks the value once set.
	check func(*serveOptions) error
}

// withTagged returns declared and the settings serveOptions declares by
// its tags alone, each with its field, in serveOptions' order.
func withTagged(declared []setting) []setting {
	all := slices.Clone(declared)
	var order []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[serveOptions]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		order = append(order, name)
		i := slices.IndexFunc(all, func(s setting) bool { return s.name == name })
		if i < 0 {
			kind := kindString
			switch f.Type {
			case reflect.TypeFor[duration]():
				kind = kindDuration
			case reflect.TypeFor[bool]():
				kind = kindBool
			case reflect.TypeFor[int](), reflect.TypeFor[int64]():
				kind = kindInt
			case reflect.TypeFor[[]string]():
				kind = kindList
			}
			all = append(all, setting{name: name, kind: kind, def: f.Tag.Get("default"), doc: f.Tag.Get("doc"),
				live: f.Tag.Get("live") == "true"})
			i = len(all) - 1
		}
		if all[i].field == nil {
			index := f.Index
			all[i].field = func(o *serveOptions) any { return reflect.ValueOf(o).Elem().FieldByIndex(index).Addr().Interface() }
		}
	}
	slices.SortStableFunc(all, func(a, b setting) int {
		return slices.Index(order, a.name) - slices.Index(order, b.name)
	})
	return all
}

// env is the setting's environment variable.
func (s *setting) env() string {
	return "UNO_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// source is where a setting's value came from.
type source struct {
	kind      string // default, profile, file, env, flag
	name      string // the profile, file, variable or flag
	line, col int    // in a file, when known
}

func (s source) String() string {
	switch s.kind {
	case "profile":
		return "profile " + s.name
	case "file":
		return s.name + ":" + strconv.Itoa(s.line)
	case "env":
		return "env " + s.name
	case "flag":
		return "flag --" + s.name
	}
	return "default"
}

// pos is a file position: file:line, or file:line:column.
func (s source) pos() string {
	p := s.name + ":" + strconv.Itoa(s.line)
	if s.col > 0 {
		p += ":" + strconv.Itoa(s.col)
	}
	return p
}

// value is a setting's value as given, before it is parsed.
type value struct {
	scalar string
	list   []string
	obj    any // a decoded object (kindObject)
	isList bool
	isObj  bool
	src    source
}

// errAt wraps a refusal with where the value came from.
func (v value) errAt(s *setting, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch v.src.kind {
	case "file":
		return fmt.Errorf("%w: %s: %s: %s", ErrConfig, v.src.pos(), s.name, msg)
	case "env":
		return fmt.Errorf("%w: %s=%s: %s", ErrConfig, s.env(), v.scalar, msg)
	case "flag":
		return fmt.Errorf("%w: --%s %s: %s", ErrConfig, s.name, v.text(), msg)
	}
	return fmt.Errorf("%w: %s (%s): %s", ErrConfig, s.name, v.src, msg)
}

func (v value) text() string {
	if v.isList {
		return strings.Join(v.list, ",")
	}
	return v.scalar
}

// set parses v into the setting's field of o.
func (s *setting) set(o *serveOptions, v value) error {
	if s.kind == kindObject {
		if !v.isObj {
			return v.errAt(s, "want an object (a mapping)")
		}
		raw, err := json.Marshal(v.obj)
		if err != nil {
			return v.errAt(s, "%v", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(s.field(o)); err != nil {
			return v.errAt(s, "%v", err)
		}
		return nil
	}
	if s.kind == kindList {
		p := s.field(o).(*[]string)
		if v.isObj {
			return v.errAt(s, "want a list of strings")
		}
		if v.isList {
			*p = slices.Clone(v.list)
		} else if v.scalar == "" {
			*p = nil
		} else {
			*p = strings.Split(v.scalar, ",")
		}
		return nil
	}
	if v.isList || v.isObj {
		return v.errAt(s, "want a %s, not a list or object", s.kind)
	}
	in := v.scalar
	if len(s.allowed) > 0 && !slices.Contains(s.allowed, in) {
		return v.errAt(s, "want %s", oneOf(s.allowed))
	}
	switch p := s.field(o).(type) {
	case *string:
		if s.kind == kindDuration && in != "" {
			d, err := time.ParseDuration(in)
			if err != nil || (s.positive && d <= 0) {
				return v.errAt(s, "want a positive duration such as 10s (empty: the default, %s)", s.zero)
			}
		}
		*p = in
	case *bool:
		b, err := strconv.ParseBool(in)
		if err != nil {
			return v.errAt(s, "want true or false")
		}
		*p = b
	case *int, *int64:
		n, err := strconv.ParseInt(in, 10, 64)
		if err != nil {
			return v.errAt(s, "%q is not a whole number: %s", in, s.wantInt())
		}
		if n < 0 {
			return v.errAt(s, "%d is negative: %s", n, s.wantInt())
		}
		if n != 0 && n < s.atLeast {
			return v.errAt(s, "%d is too small: %s", n, s.wantInt())
		}
		if ip, ok := p.(*int); ok {
			if n > int64(^uint32(0)>>1) {
				return v.errAt(s, "%d is too large", n)
			}
			*ip = int(n)
		} else {
			*p.(*int64) = n
		}
	case *duration:
		d, err := time.ParseDuration(in)
		if err != nil {
			return v.errAt(s, "%q is not a duration: want one such as 30s or 2m", in)
		}
		if d < 0 {
			return v.errAt(s, "%s is negative: want 0 or more", in)
		}
		*p = duration(d)
	default:
		panic(fmt.Sprintf("setting %s: field of type %T", s.name, p))
	}
	return nil
}

func (s *setting) wantInt() string {
	zero := "0"
	if s.zero != "" {
		zero = "0 (the default, " + s.zero + ")"
	}
	if s.atLeast > 0 {
		return fmt.Sprintf("want %s or at least %d", zero, s.atLeast)
	}
	return "want " + zero + " or more"
}

// format writes the setting's value in o as uno config print shows it.
func (s *setting) format(o *serveOptions) string {
	var out string
	switch p := s.field(o).(type) {
	case *string:
		out = *p
	case *bool:
		out = strconv.FormatBool(*p)
	case *int:
		out = strconv.Itoa(*p)
	case *int64:
		out = strconv.FormatInt(*p, 10)
	case *duration:
		out = p.String()
	case *[]string:
		out = strings.Join(*p, ",")
	default:
		if reflectNil(p) {
			return ""
		}
		b, _ := json.Marshal(p)
		out = string(b)
	}
	if s.secret != nil && out != "" {
		out = s.secret(out)
	}
	return out
}

func reflectNil(p any) bool {
	switch p := p.(type) {
	case *map[string]ruleOptions:
		return len(*p) == 0
	case **schemaOptions:
		return *p == nil
	}
	return false
}

// oneOf writes values as "a, b or c" ("" as "empty").
func oneOf(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = cmpOr(v, "empty")
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func cmpOr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

// maskDSN hides a Postgres DSN's password, as a URL or as key=value pairs.
func maskDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

var dsnPassword = regexp.MustCompile(`(password\s*=\s*)('[^']*'|\S+)`)

func checkRules(o *serveOptions) error {
	for _, coll := range slices.Sorted(maps.Keys(o.Rules)) {
		if r := o.Rules[coll]; r.PrivateRead && r.Owner == "" {
			return fmt.Errorf("%s: private_read needs owner (the field naming each row's owner)", coll)
		}
	}
	return nil
}

func checkSchema(o *serveOptions) error {
	_, err := o.Schema.schema()
	return err
}

// config is the sources uno serve reads its settings from.
type config struct {
	flags  *pflag.FlagSet // the command line; nil: none
	lookup func(string) (string, bool)
}

// load resolves the settings, by precedence: flag, environment variable,
// config file (--config or UNO_CONFIG), the profile's default, the default.
// It returns the options and each setting's source.
func (c config) load() (serveOptions, map[string]source, error) {
	values := map[string]value{}
	for i := range settings {
		s := &settings[i]
		if s.def != "" {
			values[s.name] = value{scalar: s.def, src: source{kind: "default"}}
		}
	}
	layer := func(vs map[string]value) {
		maps.Copy(values, vs)
	}
	flags, env := c.flagValues(), c.envValues()
	// The profile is known before its defaults apply: from a flag, the
	// environment or the file.
	path := ""
	if v, ok := flags["config"]; ok {
		path = v.scalar
	} else if v, ok := env["config"]; ok {
		path = v.scalar
	}
	delete(flags, "config")
	delete(env, "config")
	var file map[string]value
	if path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return serveOptions{}, nil, err
		}
	}
	profile := "dev"
	for _, l := range []map[string]value{file, env, flags} {
		if v, ok := l["profile"]; ok {
			profile = v.scalar
		}
	}
	if profile == "prod" {
		for i := range settings {
			if s := &settings[i]; s.prodDef != "" {
				values[s.name] = value{scalar: s.prodDef, src: source{kind: "profile", name: "prod"}}
			}
		}
	}
	layer(file)
	layer(env)
	layer(flags)
	var o serveOptions
	srcs := map[string]source{}
	for i := range settings {
		s := &settings[i]
		v, ok := values[s.name]
		if !ok {
			srcs[s.name] = source{kind: "default"}
			continue
		}
		if err := s.set(&o, v); err != nil {
			return serveOptions{}, nil, err
		}
		if s.check != nil {
			if err := s.check(&o); err != nil {
				return serveOptions{}, nil, v.errAt(s, "%v", err)
			}
		}
		srcs[s.name] = v.src
	}
	if err := o.validate(); err != nil {
		return serveOptions{}, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return o, srcs, nil
}

// flagValues are the settings given on the command line.
func (c config) flagValues() map[string]value {
	vs := map[string]value{}
	if c.flags == nil {
		return vs
	}
	c.flags.Visit(func(f *pflag.Flag) {
		if f.Name == "config" {
			vs["config"] = value{scalar: f.Value.String(), src: source{kind: "flag", name: f.Name}}
		}
		if r, ok := f.Value.(*rawFlag); ok {
			v := value{scalar: r.s, src: source{kind: "flag", name: f.Name}}
			if r.list {
				v = value{list: r.values, isList: true, src: v.src}
			}
			vs[f.Name] = v
		}
	})
	return vs
}

// envValues are the settings given as UNO_ environment variables.
func (c config) envValues() map[string]value {
	vs := map[string]value{}
	lookup := c.lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if p, ok := lookup("UNO_CONFIG"); ok {
		vs["config"] = value{scalar: p, src: source{kind: "env", name: "UNO_CONFIG"}}
	}
	for i := range settings {
		s := &settings[i]
		if s.fileOnly {
			continue
		}
		if e, ok := lookup(s.env()); ok {
			vs[s.name] = value{scalar: e, src: source{kind: "env", name: s.env()}}
		}
	}
	return vs
}

// rawFlag is a setting's flag: it keeps what was given, which load parses
// like a value from anywhere else.
type rawFlag struct {
	s      string
	values []string
	list   bool
	kind   string
	set    bool
}

func (r *rawFlag) Set(s string) error {
	if r.list {
		if !r.set {
			r.values = nil
		}
		if s != "" {
			r.values = append(r.values, strings.Split(s, ",")...)
		}
	}
	r.s, r.set = s, true
	return nil
}

func (r *rawFlag) String() string { return r.s }

func (r *rawFlag) Type() string {
	if r.list {
		return "strings"
	}
	return r.kind
}

// IsBoolFlag lets a bool flag be given without a value.
func (r *rawFlag) IsBoolFlag() bool { return r.kind == kindBool }

// addSettingFlags adds a flag for each setting (and --config) to f.
func addSettingFlags(f *pflag.FlagSet) {
	f.String("config", "", "a config file: .json, .yaml, .yml or .toml (keys: the flag names)")
	for i := range settings {
		s := &settings[i]
		if s.fileOnly {
			continue
		}
		r := &rawFlag{s: s.def, list: s.kind == kindList, kind: s.kind}
		if s.kind == kindDuration && s.def != "" {
			d, _ := time.ParseDuration(s.def)
			r.s = d.String()
		}
		usage := s.doc
		if s.zero != "" {
			usage += fmt.Sprintf(" (%s: %s)", cmpOr(zeroWord(s), "0"), s.zero)
		}
		if s.prodDef != "" {
			usage += fmt.Sprintf(" (--profile prod: %s)", s.prodDef)
		}
		fl := f.VarPF(r, s.name, "", usage)
		if s.kind == kindBool {
			fl.NoOptDefVal = "true"
		}
	}
}

func zeroWord(s *setting) string {
	if s.kind == kindDuration {
		return "empty"
	}
	return "0"
}

// readConfigFile reads a config file's settings, by its extension: .json,
// .yaml, .yml or .toml. It refuses unknown keys.
func readConfigFile(path string) (map[string]value, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read file: %w", ErrConfig, err)
	}
	var vs map[string]value
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		if err = checkJSON(path, b); err == nil {
			vs, err = readYAML(path, b) // for the keys' lines
		}
	case ".yaml", ".yml":
		vs, err = readYAML(path, b)
	case ".toml":
		vs, err = readTOML(path, b)
	default:
		return nil, fmt.Errorf("%w: %s: unknown file type %q: want .json, .yaml, .yml or .toml", ErrConfig, path, ext)
	}
	if err != nil {
		return nil, err
	}
	for name, v := range vs {
		s := lookupSetting(name)
		if s == nil || name == "config" {
			return nil, fmt.Errorf("%w: %s: unknown key %q: want one of the settings in docs/configuration.md",
				ErrConfig, v.src.pos(), name)
		}
	}
	return vs, nil
}

func lookupSetting(name string) *setting {
	for i := range settings {
		if settings[i].name == name {
			return &settings[i]
		}
	}
	return nil
}

// checkJSON refuses what is not JSON (YAML would take more), naming the
// line and column.
func checkJSON(path string, b []byte) error {
	var v any
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		before := b[:min(int(se.Offset), len(b))]
		line := bytes.Count(before, []byte("\n")) + 1
		col := len(before) - bytes.LastIndexByte(before, '\n') - 1
		return fmt.Errorf("%w: %s:%d:%d: %v", ErrConfig, path, line, col, se)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// readYAML reads a YAML or JSON file (JSON is YAML) with each key's line.
func readYAML(path string, b []byte) (map[string]value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			msg = strings.TrimPrefix(strings.Replace(msg, m[0], "", 1), ": ")
			return nil, fmt.Errorf("%w: %s:%s: %s", ErrConfig, path, m[1], msg)
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrConfig, path, msg)
	}
	vs := map[string]value{}
	if len(doc.Content) == 0 {
		return vs, nil // empty
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s:%d: want a mapping of settings by key", ErrConfig, path, top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, n := top.Content[i], top.Content[i+1]
		v := value{src: source{kind: "file", name: path, line: k.Line, col: k.Column}}
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Tag != "!!null" {
				v.scalar = n.Value
			}
		case yaml.SequenceNode:
			v.isList = true
			for _, e := range n.Content {
				if e.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%w: %s:%d:%d: %s: want a list of strings", ErrConfig, path, e.Line, e.Column, k.Value)
				}
				v.list = append(v.list, e.Value)
			}
		case yaml.MappingNode:
			v.isObj = true
			if err := n.Decode(&v.obj); err != nil {
				return nil, fmt.Errorf("%w: %s:%d:%d: %s: %v", ErrConfig, path, n.Line, n.Column, k.Value, err)
			}
		default:
			return nil, fmt.Errorf("%w: %s:%d:%d: %s: want a value", ErrConfig, path, n.Line, n.Column, k.Value)
		}
		if _, dup := vs[k.Value]; dup {
			return nil, fmt.Errorf("%w: %s:%d:%d: %s is set twice", ErrConfig, path, k.Line, k.Column, k.Value)
		}
		vs[k.Value] = v
	}
	return vs, nil
}

// readTOML reads a TOML file; go-toml gives the line of a syntax error, and
// each key's line is that of its first assignment or table header.
func readTOML(path string, b []byte) (map[string]value, error) {
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return nil, fmt.Errorf("%w: %s:%d:%d: %s", ErrConfig, path, row, col, de.Error())
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	lines := tomlKeyLines(b)
	vs := map[string]value{}
	for k, x := range m {
		v := value{src: source{kind: "file", name: path, line: lines[k][0], col: lines[k][1]}}
		switch x := x.(type) {
		case []any:
			v.isList = true
			for _, e := range x {
				v.list = append(v.list, fmt.Sprint(e))
			}
		case map[string]any:
			v.isObj, v.obj = true, x
		default:
			v.scalar = fmt.Sprint(x)
		}
		vs[k] = v
	}
	return vs, nil
}

var (
	tomlAssign = regexp.MustCompile(`^\s*("?)([A-Za-z0-9_-]+)("?)\s*[.=]`)
	tomlTable  = regexp.MustCompile(`^\s*\[\[?\s*"?([A-Za-z0-9_-]+)`)
)

// tomlKeyLines finds the line and column each top-level key is first
// given at.
func tomlKeyLines(b []byte) map[string][2]int {
	lines := map[string][2]int{}
	inTable := false
	for i, l := range strings.Split(string(b), "\n") {
		if m := tomlTable.FindStringSubmatchIndex(l); m != nil {
			inTable = true
			if k := l[m[2]:m[3]]; lines[k] == [2]int{} {
				lines[k] = [2]int{i + 1, m[2] + 1}
			}
			continue
		}
		if m := tomlAssign.FindStringSubmatchIndex(l); m != nil && !inTable {
			if k := l[m[4]:m[5]]; lines[k] == [2]int{} {
				lines[k] = [2]int{i + 1, m[2] + 1}
			}
		}
	}
	return lines
}
