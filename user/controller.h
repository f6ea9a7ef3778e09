/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The controller side of the CLI: key generation, and signed heartbeats
 * and commands sent to agents over UDP. portcullis.c dispatches
 * "portcullis keygen ..." and "portcullis controller ..." here.
 */
#ifndef PC_CONTROLLER_H
#define PC_CONTROLLER_H

/* argv[0] is "controller"; returns the exit code (0, 1 runtime, 2 usage). */
int pc_controller_main(int argc, char **argv);

/* argv[0] is "keygen"; returns the exit code (0, 1 runtime, 2 usage). */
int pc_keygen_main(int argc, char **argv);

#endif /* PC_CONTROLLER_H */
