/* CPU time of processes from /proc (see proccpu.h). */
#include "proccpu.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t
proc_read(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

double
proc_cpu_full(pid_t pid, int reaped, pid_t *ppid)
{
	char path[64], buf[2048], *p, *end;
	unsigned long long v[14];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (proc_read(path, buf, sizeof(buf)) <= 0 || (p = strrchr(buf, ')')) == NULL)
		return -1;
	p += 2; /* the state letter is field 3 */
	p++;
	for (int i = 0; i < 14; i++) {
		v[i] = strtoull(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	if (ppid != NULL)
		*ppid = (pid_t)v[0];
	/* fields 4..17 were read: ppid is 4, utime 14, stime 15, cutime 16, cstime 17 */
	return (double)(v[10] + v[11] + (reaped ? v[12] + v[13] : 0)) /
	       (double)sysconf(_SC_CLK_TCK);
}

double
proc_cpu_s(pid_t pid)
{
	return proc_cpu_full(pid, 0, NULL);
}

double
pg_cpu_s(pid_t postmaster)
{
	double sum = proc_cpu_full(postmaster, 1, NULL);
	DIR *d = sum < 0 ? NULL : opendir("/proc");
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10), ppid = 0;
		double c;

		if (pid > 0 && (c = proc_cpu_full(pid, 0, &ppid)) >= 0 && ppid == postmaster)
			sum += c;
	}
	if (d != NULL)
		closedir(d);
	return sum;
}
