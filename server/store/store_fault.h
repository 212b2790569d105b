/*
 * Fault injection for the store, in test builds only (objects compiled with CLEAVE_TEST_HOOKS;
 * cleave-server itself is not, so nothing can arm it there and these symbols do not exist in
 * it). SQLite's habit: make the Nth storage call from now fail and check what the layers above
 * do with it. A "call" is a transaction begin or commit or one statement of any store op.
 */
#ifndef CLEAVE_STORE_FAULT_H
#define CLEAVE_STORE_FAULT_H

/*
 * Makes the nth storage call from now fail (n >= 1; 0 disarms). A failing begin or commit
 * returns err (a negative errno such as -EIO, -ENOSPC or -EBUSY; a failed commit rolls back);
 * a failing statement makes its op return -EIO.
 */
void store_fault_arm(long n, int err);
/*
 * The same, and after each firing armed again at n calls from then, until it has fired times
 * times in all: (1, err, 4) fails the next four calls (four begins of a retried transaction).
 */
void store_fault_arm_times(long n, int err, int times);
/* 1 when the fault armed last (n >= 1) has fired, else 0; disarming keeps the answer. */
int store_fault_fired(void);
/* Storage calls counted since the last store_fault_arm. */
long store_fault_calls(void);

/* Inside store/: 0, or the errno the current call must fail with. */
int store_fault_hit(void);

#endif
