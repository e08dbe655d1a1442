package numberpool

import "encoding/json"

// Store keeps one kind of record; *store.Bucket is one.
type Store interface {
	Put(id string, v []byte) error
	PutMany(records map[string][]byte) error
	Get(id string) ([]byte, error)
	Delete(id string) error
	ForEach(fn func(id string, v []byte) error) error
}

// Buckets are the stores a Registry keeps its state in.
type Buckets struct {
	Pools      Store // pool name → Pool
	Quarantine Store // "cli:<MAC of the CLI>" or "entry:pool/id" → Quarantine
	Recent     Store // recipient → its recent CLIs and codes, as MACs
}

func (r *Registry) save(p Pool) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.b.Pools.Put(p.Name, data)
}
