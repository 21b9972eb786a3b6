package openblas

import "testing"

func TestThreadsPerWorker(t *testing.T) {
	tests := []struct {
		name           string
		workers, cores int
		env            string
		want           int
	}{
		{"one worker gets every core", 1, 2, "", 2},
		{"two workers share two cores", 2, 2, "", 1},
		{"more workers than cores still get one", 7, 2, "", 1},
		{"cores divide down", 3, 8, "", 2},
		{"env caps", 1, 8, "3", 3},
		{"env above share does not raise", 2, 2, "8", 1},
		{"env zero is unset", 1, 4, "0", 4},
		{"env garbage is unset", 1, 4, "lots", 4},
		{"env with spaces", 1, 4, " 2 ", 2},
		{"zero workers count as one", 0, 2, "", 2},
		{"zero cores count as one", 1, 0, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ThreadsPerWorker(tt.workers, tt.cores, tt.env)
			if got != tt.want {
				t.Errorf("ThreadsPerWorker(%d, %d, %q) = %d, want %d", tt.workers, tt.cores, tt.env, got, tt.want)
			}
			if got*max(tt.workers, 1) > max(tt.cores, 1) && got != 1 {
				t.Errorf("workers × threads = %d exceeds %d cores", got*tt.workers, tt.cores)
			}
		})
	}
}

func TestClampThreads(t *testing.T) {
	tests := []struct {
		name     string
		n, cores int
		env      string
		want     int
	}{
		{"within bounds", 2, 4, "", 2},
		{"below one", 0, 4, "", 1},
		{"negative", -3, 4, "", 1},
		{"above cores", 16, 2, "", 2},
		{"env caps", 4, 4, "1", 1},
		{"env above request", 2, 4, "3", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clampThreads(tt.n, tt.cores, tt.env); got != tt.want {
				t.Errorf("clampThreads(%d, %d, %q) = %d, want %d", tt.n, tt.cores, tt.env, got, tt.want)
			}
		})
	}
}
