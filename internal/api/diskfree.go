package api

import "net/http"

// checkDiskFor refuses, before the body is read, an upload whose announced
// size (Content-Length) would leave less free disk than the server's floor:
// a 507 naming the free space and the floor. Without a Content-Length, or
// over the upload limit (a 413 once reading starts), it passes; the store
// checks the exact size again before it writes.
func (s *Server) checkDiskFor(r *http.Request) error {
	if r.ContentLength <= 0 || r.ContentLength > s.cfg.MaxUploadBytes {
		return nil
	}
	return s.store.CheckFreeSpace(r.ContentLength)
}
