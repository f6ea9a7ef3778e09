/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* "portcullis fleet": fleet control through etcd (README "Fleet mode"). */
#ifndef PC_FLEET_CLI_H
#define PC_FLEET_CLI_H

int pc_fleet_main(int argc, char **argv);

#endif /* PC_FLEET_CLI_H */
