/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* `portcullis top`: a live view of mode, busiest rules and drops. */
#ifndef PC_TOP_H
#define PC_TOP_H

/* argv[0] is "top"; returns the exit code. */
int pc_top_main(int argc, char **argv, const char *pin_dir);

#endif /* PC_TOP_H */
