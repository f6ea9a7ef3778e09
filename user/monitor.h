/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* `portcullis monitor`: stream the datapath's sampled drops. */
#ifndef PC_MONITOR_H
#define PC_MONITOR_H

/* argv[0] is "monitor"; returns the exit code. */
int pc_monitor_main(int argc, char **argv, const char *pin_dir);

#endif /* PC_MONITOR_H */
