//! `registry pull-secret`: prints a Kubernetes image pull Secret (and
//! optionally the ServiceAccount that uses it) for `kubectl apply -f -`.
//!
//! ```text
//! printf '%s\n' "$PASS" | registry pull-secret --server registry.example.com \
//!     --username k8s --password-stdin --namespace team-a --service-account default \
//!   | kubectl apply -f -
//! ```
//!
//! The Secret is what `kubectl create secret docker-registry` makes: type
//! `kubernetes.io/dockerconfigjson`, one key `.dockerconfigjson` holding,
//! base64-encoded,
//!
//! ```text
//! {"auths":{"HOST":{"auth":base64("USER:PASS"),"password":PASS,"username":USER}}}
//! ```
//!
//! The kubelet matches the `HOST` key against the host of each image
//! reference, so it is a bare `host[:port]`.

use std::io::{BufRead, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::Args;

use super::htpasswd::HtpasswdUser;
use super::names::{Dns1123Label, Dns1123Subdomain, RegistryHost};
use super::{read_password, write_out, CommandError, PasswordSource};

/// `registry pull-secret` arguments.
#[derive(Debug, Args)]
pub struct PullSecretArgs {
    /// Registry host and optional port, as in image names: `registry.example.com`.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: RegistryHost,
    /// User the cluster pulls as (a user in the registry's htpasswd file).
    #[arg(long, value_name = "USER")]
    pub username: HtpasswdUser,
    /// Read the password from the first line of standard input instead of
    /// prompting (twice, without echo) on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
    /// Name of the Secret.
    #[arg(long, default_value = "regcred", value_name = "NAME")]
    pub name: Dns1123Subdomain,
    /// Namespace of the Secret (and of the ServiceAccount): the namespace of
    /// the pods that pull.
    #[arg(long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: Dns1123Label,
    /// Also print this ServiceAccount with `imagePullSecrets` naming the
    /// Secret, so every pod running as it pulls with it.
    #[arg(long, value_name = "NAME")]
    pub service_account: Option<Dns1123Subdomain>,
}

/// The `.dockerconfigjson` document, before base64.
pub fn docker_config_json(server: &RegistryHost, user: &HtpasswdUser, password: &str) -> String {
    let auth = STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({
        "auths": {
            server.as_str(): {
                "username": user.as_str(),
                "password": password,
                "auth": auth,
            }
        }
    })
    .to_string()
}

/// The YAML for `kubectl apply -f -`: the Secret, then, with
/// `--service-account`, a `---` and the ServiceAccount.
///
/// Every inserted name is double-quoted: a valid name such as `yes`, `on` or
/// `1234` would otherwise be read as a boolean or a number.
pub fn render_secret(args: &PullSecretArgs, password: &str) -> String {
    let config = STANDARD.encode(docker_config_json(&args.server, &args.username, password));
    let (name, namespace, server) = (&args.name, &args.namespace, &args.server);
    let mut yaml = format!(
        "\
# Image pull Secret for {server} (user {user}), made by `registry pull-secret`.
# It holds the password: apply it, do not commit it.
apiVersion: v1
kind: Secret
metadata:
  name: \"{name}\"
  namespace: \"{namespace}\"
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: \"{config}\"
",
        user = args.username,
    );
    if let Some(account) = &args.service_account {
        yaml.push_str(&format!(
            "\
---
# Pods running as ServiceAccount {account} in namespace {namespace} pull with the Secret above.
# `kubectl apply` creates the ServiceAccount, or sets its imagePullSecrets to exactly
# this list: the field is replaced as a whole, never merged. When it already names
# other pull secrets, keep them by adding to the list instead of applying this part:
#   kubectl -n {namespace} patch serviceaccount {account} --type=json \\
#     -p '[{{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\",\"value\":{{\"name\":\"{name}\"}}}}]'
# or by setting the whole list yourself:
#   kubectl -n {namespace} patch serviceaccount {account} \\
#     -p '{{\"imagePullSecrets\":[{{\"name\":\"{name}\"}},{{\"name\":\"OTHER\"}}]}}'
# (`kubectl patch serviceaccount {account} -p '{{\"imagePullSecrets\":[{{\"name\":\"{name}\"}}]}}'`
# on its own replaces the list, like apply.)
apiVersion: v1
kind: ServiceAccount
metadata:
  name: \"{account}\"
  namespace: \"{namespace}\"
imagePullSecrets:
  - name: \"{name}\"
"
        ));
    }
    yaml
}

/// Reads the password (stdin or prompt) and prints the YAML on `stdout`.
pub fn run(
    args: PullSecretArgs,
    stdin: impl BufRead,
    stdout: impl Write,
) -> Result<(), CommandError> {
    let prompt = format!("{} at {}", args.username, args.server);
    let source = if args.password_stdin {
        PasswordSource::Stdin
    } else {
        PasswordSource::Prompt(&prompt)
    };
    let password = read_password(source, stdin)?;
    write_out(stdout, &render_secret(&args, &password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: PullSecretArgs,
    }

    fn args(flags: &[&str]) -> PullSecretArgs {
        Cli::try_parse_from(["pull-secret"].iter().chain(flags))
            .unwrap()
            .args
    }

    fn documents(yaml: &str) -> Vec<serde_yaml_ng::Value> {
        serde_yaml_ng::Deserializer::from_str(yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    }

    fn decode(b64: &serde_yaml_ng::Value) -> String {
        String::from_utf8(STANDARD.decode(b64.as_str().unwrap()).unwrap()).unwrap()
    }

    const BASIC: [&str; 5] = [
        "--server",
        "registry.example.com",
        "--username",
        "k8s",
        "--password-stdin",
    ];

    #[test]
    fn secret_holds_the_docker_config() {
        let yaml = render_secret(&args(&BASIC), "pa55:w\"ord");
        let docs = documents(&yaml);
        assert_eq!(docs.len(), 1);
        let secret = &docs[0];
        assert_eq!(secret["apiVersion"], "v1");
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(secret["metadata"]["name"], "regcred");
        assert_eq!(secret["metadata"]["namespace"], "default");
        let json: serde_json::Value =
            serde_json::from_str(&decode(&secret["data"][".dockerconfigjson"])).unwrap();
        let entry = &json["auths"]["registry.example.com"];
        assert_eq!(entry["username"], "k8s");
        assert_eq!(entry["password"], "pa55:w\"ord");
        let auth = STANDARD.decode(entry["auth"].as_str().unwrap()).unwrap();
        assert_eq!(auth, b"k8s:pa55:w\"ord");
        assert_eq!(json["auths"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn service_account_names_the_secret() {
        let mut flags = BASIC.to_vec();
        flags.extend([
            "--name",
            "pull.team-a",
            "--namespace",
            "yes",
            "--service-account",
            "1234",
        ]);
        let yaml = render_secret(&args(&flags), "pw");
        let docs = documents(&yaml);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["metadata"]["name"], "pull.team-a");
        // Quoted, so YAML does not read them as a boolean or a number.
        assert_eq!(docs[0]["metadata"]["namespace"], "yes");
        let account = &docs[1];
        assert_eq!(account["kind"], "ServiceAccount");
        assert_eq!(account["metadata"]["name"], "1234");
        assert_eq!(account["metadata"]["namespace"], "yes");
        assert_eq!(account["imagePullSecrets"][0]["name"], "pull.team-a");
        assert_eq!(account["imagePullSecrets"].as_sequence().unwrap().len(), 1);
        assert!(yaml.contains("/imagePullSecrets/-"), "{yaml}");
    }

    #[test]
    fn host_with_port_is_the_key() {
        let flags = [
            "--server",
            "10.0.0.7:5000",
            "--username",
            "u",
            "--password-stdin",
        ];
        let json = docker_config_json(&args(&flags).server, &"u".parse().unwrap(), "p");
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            json["auths"]["10.0.0.7:5000"]["auth"],
            STANDARD.encode("u:p")
        );
    }

    #[test]
    fn bad_flags_are_refused_by_the_parser() {
        let cases: [(&[&str], &str); 5] = [
            (
                &["--server", "https://r.example.com", "--username", "u"],
                "remove the scheme",
            ),
            (&["--server", "r.example.com", "--username", "a:b"], "':'"),
            (&["--server", "r.example.com", "--username", ""], "empty"),
            (
                &[
                    "--server",
                    "r.example.com",
                    "--username",
                    "u",
                    "--name",
                    "RegCred",
                ],
                "DNS-1123",
            ),
            (
                &[
                    "--server",
                    "r.example.com",
                    "--username",
                    "u",
                    "--namespace",
                    "a.b",
                ],
                "DNS-1123 label",
            ),
        ];
        for (flags, reason) in cases {
            let error = Cli::try_parse_from(["pull-secret"].iter().chain(flags)).unwrap_err();
            assert!(error.to_string().contains(reason), "{flags:?}: {error}");
        }
    }

    #[test]
    fn run_reads_the_password_from_stdin() {
        let mut out = Vec::new();
        run(args(&BASIC), &b"from-stdin\r\n"[..], &mut out).unwrap();
        let docs = documents(std::str::from_utf8(&out).unwrap());
        let json = decode(&docs[0]["data"][".dockerconfigjson"]);
        assert!(json.contains("\"password\":\"from-stdin\""), "{json}");
        let error = run(args(&BASIC), &b""[..], &mut Vec::new()).unwrap_err();
        assert!(
            error.to_string().contains("standard input is empty"),
            "{error}"
        );
    }
}
