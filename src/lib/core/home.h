/* Where clawbox keeps its files: the clawbox home, $HOME/.clawbox, and
 * every path in it. No other module spells one of these paths. */
#ifndef CB_CORE_HOME_H
#define CB_CORE_HOME_H

#define CB_HOME_NAME ".clawbox" /* in $HOME */
#define CB_HOME_ENV  "CLAWBOX_HOME"
/* The home as users write it (defaults in the config table, help). */
#define CB_HOME_TILDE "~/" CB_HOME_NAME

/* What lies in the home (or in the base directory `clawbox init --dir`
 * is given). */
#define CB_HOME_CONFIG_DIR  "config"
#define CB_HOME_CONFIG      CB_HOME_CONFIG_DIR "/clawbox.toml"
#define CB_HOME_TOKEN       "token"
#define CB_HOME_TOOLS       "tools"
#define CB_HOME_AUDIT       "audit"
#define CB_HOME_DATA        "data"
#define CB_HOME_CREDENTIALS "credentials.enc"
#define CB_HOME_MASTER_KEY  "master.key"
#define CB_HOME_WORKSPACES  "workspaces"

/* The home: $CLAWBOX_HOME when set and not empty (a directory made by
 * `clawbox init --dir`), else $HOME/.clawbox, or /root/.clawbox when HOME
 * is unset or empty. Caller frees. */
char *cb_home_dir(void);
/* cb_home_dir()/leaf, for a leaf above. Caller frees. */
char *cb_home_path(const char *leaf);
/* path with a leading "~/" replaced by $HOME/; unchanged when HOME is
 * unset or empty. Caller frees. */
char *cb_home_expand(const char *path);

#endif
