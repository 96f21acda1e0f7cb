package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"github.com/unosync/uno/server"
)

// Errors returned by the package.
var (
	// ErrConfig reports a Config that cannot work.
	ErrConfig = errors.New("jobs: config")
	// ErrNotFound reports a job ID with no job.
	ErrNotFound = errors.New("jobs: no such job")
	// ErrBadArgs reports job arguments or a filter that cannot be used.
	ErrBadArgs = errors.New("jobs: bad arguments")
	// ErrUnsupported reports a job kind this node has no work for
	// (Work's field is nil): the job is cancelled, not retried.
	ErrUnsupported = errors.New("jobs: this node cannot run this kind")
)

// Work is what the jobs do; each field runs one kind. A nil field: this
// node does not run that kind (its jobs are cancelled with
// ErrUnsupported if they reach it).
type Work struct {
	// Compact compacts a tenant's log below before, capped further by
	// this node's live sessions (server.Server.Compact).
	Compact func(ctx context.Context, tenant string, before uint64) (server.Compaction, error)
	// Retain applies a tenant's retention, or every tenant's when tenant
	// is "", and returns the entries deleted.
	Retain func(ctx context.Context, tenant string) (int64, error)
	// Rebuild rebuilds a projection by name. An unknown name must
	// return an error wrapping ErrBadArgs (the job is cancelled).
	Rebuild func(ctx context.Context, name string) error
	// Export writes a tenant's log as JSON lines to w.
	Export func(ctx context.Context, tenant string, w io.Writer) (int, error)
	// Delete deletes a tenant and its data.
	Delete func(ctx context.Context, tenant string) error
	// Floors returns, by tenant, the lowest position of this node's live
	// sync sessions (server.Server.SessionFloors). Nil: none.
	Floors func() map[string]uint64
	// Pending returns the tenants to compact since the last call
	// (server.Server.PendingCompactions). Nil: none.
	Pending func() []string
}

// Config configures a Jobs client. Exactly one of SQLitePath and
// Postgres is required.
type Config struct {
	// SQLitePath is the embedded log's file (data/log.db).
	SQLitePath string
	// Postgres is the Postgres log's DSN.
	Postgres string
	// Node names this node in job records (River's client ID, the
	// floors table, CompactArgs.By). Default: host name and process ID.
	Node string
	// Workers is how many jobs this node runs at once. Default 0: none
	// (the client only enqueues, lists, retries and cancels).
	Workers int
	// Work is what the jobs do on this node; needed when Workers > 0.
	Work Work
	// CompactInterval is how often this node enqueues a compaction job
	// for each tenant Work.Pending names. Default 1h; negative: never.
	CompactInterval time.Duration
	// RetentionInterval is how often one node (River's leader) enqueues
	// a retention job for every tenant, with Work.Retain. Default 1h;
	// negative: never.
	RetentionInterval time.Duration
	// HeartbeatInterval is how often this node records its live
	// sessions' floors; a node's floors count for three intervals after
	// its last heartbeat. Default 10s.
	HeartbeatInterval time.Duration
	// MaxAttempts is how many times a job runs before it is discarded.
	// Default 5 (River's retry backoff: about attempt⁴ seconds).
	MaxAttempts int
	// JobTimeout bounds one run of a job. Default 1h.
	JobTimeout time.Duration
	// FetchPollInterval is how often an idle node looks for jobs when no
	// notification wakes it (SQLite has none). Default 1s.
	FetchPollInterval time.Duration
	// Now returns the time; default time.Now.
	Now func() time.Time
	// Logger receives the jobs' logs; default discard.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if (c.SQLitePath == "") == (c.Postgres == "") {
		return fmt.Errorf("%w: want exactly one of SQLitePath and Postgres", ErrConfig)
	}
	if c.Workers < 0 {
		return fmt.Errorf("%w: Workers %d must not be negative", ErrConfig, c.Workers)
	}
	if c.Node == "" {
		host, _ := os.Hostname()
		c.Node = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = time.Hour
	}
	if c.RetentionInterval == 0 {
		c.RetentionInterval = time.Hour
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = time.Hour
	}
	if c.FetchPollInterval <= 0 {
		c.FetchPollInterval = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// riverClient is the part of River's client the jobs use: the same for
// both drivers, whose clients differ only in their transaction type.
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
}

// Jobs is a River client on the log's database: it enqueues, lists,
// retries and cancels jobs, and with Workers > 0 runs them. Safe for
// concurrent use.
type Jobs struct {
	cfg    Config
	store  store
	client riverClient
	cancel context.CancelFunc
	done   chan struct{}
}

// Open migrates River's tables and the floors table in the log's
// database (idempotent) and returns a client. Call [Jobs.Start] to run
// jobs and the node's loops, [Jobs.Close] to stop.
func Open(ctx context.Context, cfg Config) (*Jobs, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	j := &Jobs{cfg: cfg}
	var err error
	rc := j.riverConfig()
	if cfg.SQLitePath != "" {
		var s *sqliteStore
		if s, err = openSQLite(cfg.SQLitePath); err != nil {
			return nil, err
		}
		j.store = s
		if err = s.migrate(ctx); err == nil {
			j.client, err = river.NewClient[*sql.Tx](riversqlite.New(s.db), rc)
		}
	} else {
		var s *pgStore
		if s, err = openPostgres(ctx, cfg.Postgres); err != nil {
			return nil, err
		}
		j.store = s
		if err = s.migrate(ctx); err == nil {
			j.client, err = river.NewClient[pgx.Tx](riverpgxv5.New(s.pool), rc)
		}
	}
	if err != nil {
		j.store.close()
		return nil, fmt.Errorf("open jobs: %w", err)
	}
	return j, nil
}

// Migrate creates or updates River's tables and the floors table in the
// log's database of cfg (SQLitePath or Postgres).
func Migrate(ctx context.Context, cfg Config) error {
	j, err := Open(ctx, cfg)
	if err != nil {
		return err
	}
	return j.Close(ctx)
}

func (j *Jobs) riverConfig() *river.Config {
	rc := &river.Config{
		ID:                j.cfg.Node,
		Logger:            j.cfg.Logger,
		MaxAttempts:       j.cfg.MaxAttempts,
		JobTimeout:        j.cfg.JobTimeout,
		FetchPollInterval: j.cfg.FetchPollInterval,
		FetchCooldown:     min(j.cfg.FetchPollInterval, 100*time.Millisecond),
	}
	if j.cfg.Workers == 0 {
		return rc
	}
	w := river.NewWorkers()
	river.AddWorker(w, &worker[CompactArgs]{j: j, run: j.compact})
	river.AddWorker(w, &worker[RetainArgs]{j: j, run: j.retain})
	river.AddWorker(w, &worker[RebuildArgs]{j: j, run: j.rebuild})
	river.AddWorker(w, &worker[ExportArgs]{j: j, run: j.export})
	river.AddWorker(w, &worker[DeleteArgs]{j: j, run: j.delete})
	rc.Workers = w
	rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: j.cfg.Workers}}
	if j.cfg.RetentionInterval > 0 && j.cfg.Work.Retain != nil {
		rc.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(j.cfg.RetentionInterval),
			func() (river.JobArgs, *river.InsertOpts) { return RetainArgs{}, insertOpts(RetainArgs{}, nil) },
			&river.PeriodicJobOpts{ID: "uno_retain_all"})}
	}
	return rc
}

// Start runs the node's jobs (with Workers > 0) and its loops: the
// heartbeat recording its live sessions' floors and, every
// CompactInterval, a compaction job for each pending tenant. They stop
// at Close.
func (j *Jobs) Start(ctx context.Context) error {
	if j.cfg.Workers > 0 {
		if err := j.client.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start jobs: %w", err)
		}
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j.cancel, j.done = cancel, make(chan struct{})
	go func() {
		defer close(j.done)
		j.runLoops(lctx)
	}()
	return nil
}

// Close stops the loops, lets the running jobs finish (until ctx ends;
// then they are cancelled and retried later by some node), and closes the
// database connections.
func (j *Jobs) Close(ctx context.Context) error {
	if j.cancel != nil {
		j.cancel()
		<-j.done
		// Drop this node's floors: its sessions end with it.
		j.store.setFloors(context.WithoutCancel(ctx), j.cfg.Node, nil, j.cfg.Now())
	}
	var err error
	if j.cfg.Workers > 0 && j.cancel != nil {
		if err = j.client.Stop(ctx); ctx.Err() != nil {
			// Cut the jobs still running: River retries them later,
			// on some node.
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = j.client.StopAndCancel(cctx)
			cancel()
		}
	}
	j.store.close()
	return err
}

// runLoops heartbeats the floors and enqueues pending compactions.
func (j *Jobs) runLoops(ctx context.Context) {
	hb := time.NewTicker(j.cfg.HeartbeatInterval)
	defer hb.Stop()
	var compact <-chan time.Time
	if j.cfg.CompactInterval > 0 && j.cfg.Work.Pending != nil {
		t := time.NewTicker(j.cfg.CompactInterval)
		defer t.Stop()
		compact = t.C
	}
	j.heartbeat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			j.heartbeat(ctx)
		case <-compact:
			for _, t := range j.cfg.Work.Pending() {
				if _, err := j.Enqueue(ctx, CompactArgs{Tenant: t, By: j.cfg.Node}, nil); err != nil {
					j.cfg.Logger.Warn("enqueue compaction", "tenant", t, "err", err)
				}
			}
		}
	}
}

func (j *Jobs) heartbeat(ctx context.Context) {
	var floors map[string]uint64
	if j.cfg.Work.Floors != nil {
		floors = j.cfg.Work.Floors()
	}
	if err := j.store.setFloors(ctx, j.cfg.Node, floors, j.cfg.Now()); err != nil && ctx.Err() == nil {
		j.cfg.Logger.Warn("record session floors", "err", err)
	}
}

// EnqueueOpts are optional settings of one job.
type EnqueueOpts struct {
	// At schedules the job; zero: now.
	At time.Time
	// MaxAttempts overrides Config.MaxAttempts.
	MaxAttempts int
}

// Enqueued is what Enqueue did.
type Enqueued struct {
	Job Job
	// Duplicate: the same work (kind and tenant or projection) was
	// already waiting or running; Job is that job, and nothing was added.
	Duplicate bool
}

// uniqueStates are the states in which a job blocks the same work from
// being enqueued again: every state but the finished ones.
var uniqueStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled}

func insertOpts(a Args, o *EnqueueOpts) *river.InsertOpts {
	io := &river.InsertOpts{Priority: a.priority(), UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
	if o != nil {
		io.ScheduledAt = o.At
		io.MaxAttempts = o.MaxAttempts
	}
	return io
}

// Enqueue adds a job, unless the same work is already waiting or running
// (then it returns that job, Duplicate set). Any node with workers may
// run it.
func (j *Jobs) Enqueue(ctx context.Context, a Args, o *EnqueueOpts) (Enqueued, error) {
	if err := checkArgs(a); err != nil {
		return Enqueued{}, err
	}
	res, err := j.client.Insert(ctx, a, insertOpts(a, o))
	if err != nil {
		return Enqueued{}, fmt.Errorf("enqueue %s: %w", a.Kind(), err)
	}
	return Enqueued{Job: jobOf(res.Job), Duplicate: res.UniqueSkippedAsDuplicate}, nil
}

func checkArgs(a Args) error {
	switch a := a.(type) {
	case CompactArgs:
		if a.Tenant == "" {
			return fmt.Errorf("%w: compaction needs a tenant", ErrBadArgs)
		}
	case RebuildArgs:
		if a.Projection == "" {
			return fmt.Errorf("%w: rebuild needs a projection name", ErrBadArgs)
		}
	case ExportArgs:
		if a.Tenant == "" || a.Path == "" || !filepath.IsAbs(a.Path) {
			return fmt.Errorf("%w: export needs a tenant and an absolute file path", ErrBadArgs)
		}
	case DeleteArgs:
		if a.Tenant == "" {
			return fmt.Errorf("%w: delete needs a tenant", ErrBadArgs)
		}
	}
	return nil
}

// Job is one job as listed.
type Job struct {
	ID          int64
	Kind        string
	Args        string // a summary: tenant, projection, path
	State       string // River's: available, scheduled, running, retryable, completed, cancelled, discarded, pending
	Attempt     int
	MaxAttempts int
	Priority    int
	AttemptedBy []string // the nodes that ran it
	CreatedAt   time.Time
	ScheduledAt time.Time
	FinishedAt  time.Time // zero until finished
	LastError   string
	Output      json.RawMessage // what the last successful run recorded
}

func jobOf(r *rivertype.JobRow) Job {
	jb := Job{ID: r.ID, Kind: r.Kind, State: string(r.State), Attempt: r.Attempt, MaxAttempts: r.MaxAttempts,
		Priority: r.Priority, AttemptedBy: r.AttemptedBy, CreatedAt: r.CreatedAt, ScheduledAt: r.ScheduledAt, Args: summarize(r.Kind, r.EncodedArgs)}
	if r.FinalizedAt != nil {
		jb.FinishedAt = *r.FinalizedAt
	}
	if n := len(r.Errors); n > 0 {
		jb.LastError = r.Errors[n-1].Error
	}
	if out := r.Output(); len(out) > 0 {
		jb.Output = json.RawMessage(out)
	}
	return jb
}

func summarize(kind string, raw []byte) string {
	var a Args
	switch kind {
	case KindCompact:
		a = decode[CompactArgs](raw)
	case KindRetain:
		a = decode[RetainArgs](raw)
	case KindRebuild:
		a = decode[RebuildArgs](raw)
	case KindExport:
		a = decode[ExportArgs](raw)
	case KindDelete:
		a = decode[DeleteArgs](raw)
	default:
		return string(raw)
	}
	return a.summary()
}

func decode[T Args](raw []byte) T {
	var a T
	json.Unmarshal(raw, &a)
	return a
}

// Filter selects jobs to list; zero fields select all.
type Filter struct {
	States []string
	Kinds  []string
	// Limit caps the jobs returned, newest first. Default 100.
	Limit int
}

// States lists River's job states, for filters.
var states = []string{"available", "scheduled", "pending", "running", "retryable", "completed", "cancelled", "discarded"}

// List returns the jobs f selects, newest first.
func (j *Jobs) List(ctx context.Context, f Filter) ([]Job, error) {
	p := river.NewJobListParams().OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(cmpOr(f.Limit, 100))
	if len(f.States) > 0 {
		var ss []rivertype.JobState
		for _, s := range f.States {
			if !slices.Contains(states, s) {
				return nil, fmt.Errorf("%w: state %q: want one of %v", ErrBadArgs, s, states)
			}
			ss = append(ss, rivertype.JobState(s))
		}
		p = p.States(ss...)
	}
	if len(f.Kinds) > 0 {
		for _, k := range f.Kinds {
			if !slices.Contains(kinds, k) {
				return nil, fmt.Errorf("%w: kind %q: want one of %v", ErrBadArgs, k, kinds)
			}
		}
		p = p.Kinds(f.Kinds...)
	}
	res, err := j.client.JobList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	out := make([]Job, 0, len(res.Jobs))
	for _, r := range res.Jobs {
		out = append(out, jobOf(r))
	}
	return out, nil
}

// Get returns one job, or ErrNotFound.
func (j *Jobs) Get(ctx context.Context, id int64) (Job, error) {
	r, err := j.client.JobGet(ctx, id)
	return j.row(r, err, id)
}

// Count is how many jobs of a kind are in a state.
type Count struct {
	State string
	Kind  string
	N     int64
}

// Counts returns the number of jobs by state and kind.
func (j *Jobs) Counts(ctx context.Context) ([]Count, error) { return j.store.counts(ctx) }

// Retry makes a finished or waiting job available to run now (a
// running one is left as it is), or returns ErrNotFound.
func (j *Jobs) Retry(ctx context.Context, id int64) (Job, error) {
	r, err := j.client.JobRetry(ctx, id)
	return j.row(r, err, id)
}

// Cancel cancels a job: one waiting never runs; a running one has its
// context cancelled (on whichever node runs it) and is not retried; a
// finished one is left as it is. ErrNotFound for an unknown ID.
func (j *Jobs) Cancel(ctx context.Context, id int64) (Job, error) {
	r, err := j.client.JobCancel(ctx, id)
	return j.row(r, err, id)
}

func (j *Jobs) row(r *rivertype.JobRow, err error, id int64) (Job, error) {
	if errors.Is(err, rivertype.ErrNotFound) {
		return Job{}, fmt.Errorf("%w: %d (uno jobs list shows them)", ErrNotFound, id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("job %d: %w", id, err)
	}
	return jobOf(r), nil
}

// worker runs one kind with run, cancelling (not retrying) jobs whose
// arguments cannot work.
type worker[T Args] struct {
	river.WorkerDefaults[T]
	j   *Jobs
	run func(ctx context.Context, a T) (any, error)
}

func (w *worker[T]) Work(ctx context.Context, job *river.Job[T]) error {
	out, err := w.run(ctx, job.Args)
	if errors.Is(err, ErrBadArgs) || errors.Is(err, ErrUnsupported) {
		w.j.cfg.Logger.Warn("job cancelled", "id", job.ID, "kind", job.Kind, "err", err)
		return river.JobCancel(err)
	}
	if err != nil {
		w.j.cfg.Logger.Warn("job failed", "id", job.ID, "kind", job.Kind, "attempt", job.Attempt, "err", err)
		return err
	}
	if out != nil {
		if err := river.RecordOutput(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

// CompactOutput is what a compaction job records.
type CompactOutput struct {
	Node      string `json:"node"`
	Before    uint64 `json:"before"`
	Floor     uint64 `json:"floor"`
	Rewritten int64  `json:"rewritten"`
	Saved     int64  `json:"saved"`
}

// compact compacts below the lowest floor that any node's live sessions
// recorded (those of nodes whose heartbeat is fresh), then below this
// node's own live sessions (Work.Compact).
func (j *Jobs) compact(ctx context.Context, a CompactArgs) (any, error) {
	if j.cfg.Work.Compact == nil {
		return nil, ErrUnsupported
	}
	before := a.Before
	if before == 0 {
		before = math.MaxUint64
	}
	since := j.cfg.Now().Add(-3 * j.cfg.HeartbeatInterval)
	low, ok, err := j.store.floor(ctx, a.Tenant, since)
	if err != nil {
		return nil, err
	}
	if ok {
		before = min(before, low+1)
	}
	res, err := j.cfg.Work.Compact(ctx, a.Tenant, before)
	if err != nil {
		return nil, err
	}
	return CompactOutput{Node: j.cfg.Node, Before: before, Floor: res.Floor, Rewritten: int64(res.Rewritten), Saved: int64(res.Saved)}, nil
}

// RunOutput is what the other kinds record: the node that ran them and
// a count (entries deleted, exported).
type RunOutput struct {
	Node string `json:"node"`
	N    int64  `json:"n,omitempty"`
}

func (j *Jobs) retain(ctx context.Context, a RetainArgs) (any, error) {
	if j.cfg.Work.Retain == nil {
		return nil, ErrUnsupported
	}
	n, err := j.cfg.Work.Retain(ctx, a.Tenant)
	return RunOutput{Node: j.cfg.Node, N: n}, err
}

func (j *Jobs) rebuild(ctx context.Context, a RebuildArgs) (any, error) {
	if j.cfg.Work.Rebuild == nil {
		return nil, ErrUnsupported
	}
	return RunOutput{Node: j.cfg.Node}, j.cfg.Work.Rebuild(ctx, a.Projection)
}

// export writes beside the target and renames it into place: the file is
// whole or absent.
func (j *Jobs) export(ctx context.Context, a ExportArgs) (any, error) {
	if j.cfg.Work.Export == nil {
		return nil, ErrUnsupported
	}
	f, err := os.CreateTemp(filepath.Dir(a.Path), "."+filepath.Base(a.Path)+".*")
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", a.Path, err)
	}
	defer os.Remove(f.Name())
	n, err := j.cfg.Work.Export(ctx, a.Tenant, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), a.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", a.Path, err)
	}
	return RunOutput{Node: j.cfg.Node, N: int64(n)}, nil
}

func (j *Jobs) delete(ctx context.Context, a DeleteArgs) (any, error) {
	if j.cfg.Work.Delete == nil {
		return nil, ErrUnsupported
	}
	return RunOutput{Node: j.cfg.Node}, j.cfg.Work.Delete(ctx, a.Tenant)
}

func cmpOr(a, b int) int {
	if a > 0 {
		return a
	}
	return b
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }
