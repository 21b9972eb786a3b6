package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A job's history is jobs/<id>.history: a sequence of frames (frame.go) of
// kind kindHistory, each one batch of entries appended and fsynced as a
// unit. A frame's payload is the index of its first entry (8 bytes,
// little-endian) followed by its entries, each a JSON value, separated by
// newlines (JSON encodes none inside a value). The record says how many
// entries are the job's (JobRecord.HistoryLen); the file may hold more,
// written before a crash that came before the record, and its last frame
// may be torn. Both are cut off when the jobs are listed at start
// (ListJobs), so that the next append follows the recorded entries. A file
// with fewer intact entries than the record counts (a damaged file, or a
// copy of the data directory that took the history before a record
// written after it) gives those it has: a job that was running resumes
// from its checkpoint, which holds its whole history.

// historyHeader is the size of a history frame's index field.
const historyHeader = 8

// AppendJobHistory appends entries, numbered from from (the number of
// entries before them, 0 for the first), to a job's history file as one
// frame, and fsyncs it. The file must hold exactly from entries:
// appending after a failed append, or after entries the job's record does
// not count, needs PutJobHistory instead. It is durable when it returns
// nil.
func (s *Store) AppendJobHistory(ctx context.Context, jobID string, from int, entries []json.RawMessage) (err error) {
	if err := checkID("job", jobID); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	frame, err := historyFrame(from, entries)
	if err != nil {
		return fmt.Errorf("store: append history of job %s: %w", jobID, err)
	}
	rel := historyPath(jobID)
	s.mu.Lock()
	_, existed := s.files[rel]
	s.mu.Unlock()
	f, err := s.fs.OpenFile(rel, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return writeErr("append to", rel, err)
	}
	_, err = f.Write(frame)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Part of the frame may be on disk: Stats learns the size at the
		// next Open, and the caller rewrites the file.
		return writeErr("append to", rel, err)
	}
	s.mu.Lock()
	s.account(rel, s.files[rel]+int64(len(frame)))
	s.mu.Unlock()
	if !existed {
		return writeErr("sync directory", dirJobs, s.fsyncDir(dirJobs))
	}
	return nil
}

// PutJobHistory atomically replaces a job's history file with entries, as
// one frame. It is durable when it returns nil.
func (s *Store) PutJobHistory(ctx context.Context, jobID string, entries []json.RawMessage) error {
	if err := checkID("job", jobID); err != nil {
		return err
	}
	frame, err := historyFrame(0, entries)
	if err != nil {
		return fmt.Errorf("store: put history of job %s: %w", jobID, err)
	}
	return s.replaceFile(ctx, historyPath(jobID), int64(len(frame)), func(w io.Writer) error {
		_, err := w.Write(frame)
		return err
	})
}

// historyFrame encodes one frame of entries numbered from from.
func historyFrame(from int, entries []json.RawMessage) ([]byte, error) {
	if from < 0 {
		return nil, fmt.Errorf("first entry number %d is negative", from)
	}
	n := historyHeader
	for i, e := range entries {
		if len(e) == 0 || bytes.IndexByte(e, '\n') >= 0 {
			return nil, fmt.Errorf("entry %d is empty or holds a newline", from+i)
		}
		n += len(e) + 1
	}
	n-- // no newline after the last entry
	if len(entries) == 0 {
		n = historyHeader
	}
	var buf bytes.Buffer
	buf.Grow(frameOverhd + n)
	err := writeFrame(&buf, kindHistory, uint64(n), func(w io.Writer) error {
		var h [historyHeader]byte
		binary.LittleEndian.PutUint64(h[:], uint64(from))
		w.Write(h[:])
		for i, e := range entries {
			if i > 0 {
				w.Write([]byte{'\n'})
			}
			w.Write(e)
		}
		return nil
	})
	return buf.Bytes(), err
}

// readHistory returns up to the first n entries of a job's history file
// (they share one buffer). clean is false when the file holds anything
// else: entries past the n-th, a torn or damaged frame, or fewer than n
// intact entries, which a copy of a running server's data directory can
// pair with a record written after it. A missing file holds no entries.
func (s *Store) readHistory(jobID string, n int) (entries []json.RawMessage, clean bool, err error) {
	rel := historyPath(jobID)
	f, info, err := s.openRegular(rel)
	if errors.Is(err, ErrNotFound) {
		return []json.RawMessage{}, n == 0, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data := make([]byte, info.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, false, readErr(rel, err)
	}
	entries = make([]json.RawMessage, 0, n)
	off := 0
	for len(entries) < n {
		payload, size, ok := nextHistoryFrame(data[off:])
		if !ok || binary.LittleEndian.Uint64(payload) != uint64(len(entries)) {
			break
		}
		if body := payload[historyHeader:]; len(body) > 0 {
			for line := range bytes.SplitSeq(body, []byte{'\n'}) {
				entries = append(entries, line)
			}
		}
		off += size
	}
	clean = len(entries) == n && off == len(data)
	if len(entries) > n {
		entries = entries[:n]
	}
	return entries, clean, nil
}

// nextHistoryFrame checks the frame at the start of data and returns its
// payload and its size; ok is false for a torn or damaged frame.
func nextHistoryFrame(data []byte) (payload []byte, size int, ok bool) {
	if len(data) < frameOverhd || string(data[:4]) != frameMagic ||
		binary.LittleEndian.Uint16(data[4:]) != frameVersion ||
		kind(binary.LittleEndian.Uint16(data[6:])) != kindHistory {
		return nil, 0, false
	}
	n := binary.LittleEndian.Uint64(data[8:])
	if n < historyHeader || n > uint64(len(data)-frameOverhd) {
		return nil, 0, false
	}
	end := headerSize + int(n)
	if crc32.Checksum(data[:end], castagnoli) != binary.LittleEndian.Uint32(data[end:]) {
		return nil, 0, false
	}
	return data[headerSize:end], end + trailerSize, true
}

// rewriteHistory replaces a job's history file with entries, or removes
// it when there are none.
func (s *Store) rewriteHistory(ctx context.Context, jobID string, entries []json.RawMessage) error {
	if len(entries) > 0 {
		return s.PutJobHistory(ctx, jobID, entries)
	}
	if err := s.remove(historyPath(jobID)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
