// Package rowmodel is the rows read model's logic, shared by both event
// logs: folding transactions into merged row states ([Fold]), rendering a
// row as the JSON document the query API serves ([Doc]), snapshot chunks
// bounded by rows and bytes ([CollectSnapshot]) and the canonical hash of
// a tenant's rows ([Hash]). The logs keep only their SQL.
package rowmodel
