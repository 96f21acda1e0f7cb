package jobs

import (
	"github.com/riverqueue/river"
)

// The job kinds, as River stores them in river_job.kind.
const (
	KindCompact = "uno_compact"
	KindRetain  = "uno_retain"
	KindRebuild = "uno_rebuild"
	KindExport  = "uno_export"
	KindDelete  = "uno_delete"
)

// Kinds lists every job kind, for validating filters.
var kinds = []string{KindCompact, KindRetain, KindRebuild, KindExport, KindDelete}

// The priorities (1 runs first): a tenant's deletion and a projection
// rebuild before exports, exports before compaction and retention.
const (
	priorityDelete  = 1
	priorityRebuild = 1
	priorityExport  = 2
	priorityCompact = 3
	priorityRetain  = 4
)

// Args are a job's arguments: IDs and names only, never row data. One of
// CompactArgs, RetainArgs, RebuildArgs, ExportArgs, DeleteArgs.
type Args interface {
	river.JobArgs
	summary() string
	priority() int
}

// CompactArgs compacts one tenant's log below Before (0: as far as every
// live session on every node allows).
type CompactArgs struct {
	Tenant string `json:"tenant" river:"unique"`
	Before uint64 `json:"before,omitempty"`
	// By names the node or command that enqueued the job.
	By string `json:"by,omitempty"`
}

// Kind implements river.JobArgs.
func (CompactArgs) Kind() string      { return KindCompact }
func (a CompactArgs) summary() string { return "tenant=" + a.Tenant + beforeSummary(a.Before) }
func (CompactArgs) priority() int     { return priorityCompact }
func beforeSummary(b uint64) string {
	if b == 0 {
		return ""
	}
	return " before=" + uitoa(b)
}

// RetainArgs deletes the log entries older than their tenants'
// retention: of one tenant, or of every tenant of the registry when
// Tenant is empty.
type RetainArgs struct {
	Tenant string `json:"tenant,omitempty" river:"unique"`
}

// Kind implements river.JobArgs.
func (RetainArgs) Kind() string { return KindRetain }
func (a RetainArgs) summary() string {
	if a.Tenant == "" {
		return "all tenants"
	}
	return "tenant=" + a.Tenant
}
func (RetainArgs) priority() int { return priorityRetain }

// RebuildArgs rebuilds a projection from the log and swaps it in.
type RebuildArgs struct {
	Projection string `json:"projection" river:"unique"`
}

// Kind implements river.JobArgs.
func (RebuildArgs) Kind() string      { return KindRebuild }
func (a RebuildArgs) summary() string { return "projection=" + a.Projection }
func (RebuildArgs) priority() int     { return priorityRebuild }

// ExportArgs writes a tenant's log as JSON lines to Path (a file name,
// written whole or not at all).
type ExportArgs struct {
	Tenant string `json:"tenant" river:"unique"`
	Path   string `json:"path" river:"unique"`
}

// Kind implements river.JobArgs.
func (ExportArgs) Kind() string      { return KindExport }
func (a ExportArgs) summary() string { return "tenant=" + a.Tenant + " path=" + a.Path }
func (ExportArgs) priority() int     { return priorityExport }

// DeleteArgs deletes a tenant and all its data.
type DeleteArgs struct {
	Tenant string `json:"tenant" river:"unique"`
}

// Kind implements river.JobArgs.
func (DeleteArgs) Kind() string      { return KindDelete }
func (a DeleteArgs) summary() string { return "tenant=" + a.Tenant }
func (DeleteArgs) priority() int     { return priorityDelete }
