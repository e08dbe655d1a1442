package store

// Bucket gives the package's external tests one bucket by name, as the package's own code has it.
func (db *DB) Bucket(name string) *bucket { return db.bucket(name) }
