//! The Kubernetes client: kubeconfig flag, else KUBECONFIG, then
//! ~/.kube/config, then the in-cluster service account.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::exit::{Failure, one_line};

pub async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, Failure> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| {
                Failure::Usage(format!(
                    "--kubeconfig {}: {}",
                    path.display(),
                    one_line(&e.to_string())
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    Failure::Usage(format!(
                        "--kubeconfig {}: {}",
                        path.display(),
                        one_line(&e.to_string())
                    ))
                })?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| Failure::Usage(format!("--context: {}", one_line(&e.to_string()))))?,
        None => kube::Config::infer().await.map_err(|e| {
            Failure::Runtime(format!(
                "no Kubernetes configuration found: {}",
                one_line(&e.to_string())
            ))
        })?,
    };
    kube::Client::try_from(config).map_err(|e| {
        Failure::Runtime(format!(
            "cannot build a Kubernetes client: {}",
            one_line(&e.to_string())
        ))
    })
}

/// Every context of the kubeconfig: the flag's file, else KUBECONFIG's
/// files, else `~/.kube/config`.
pub fn contexts(kubeconfig: Option<&Path>) -> Result<Vec<String>, Failure> {
    let file = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path).map_err(|e| {
            Failure::Usage(format!(
                "--kubeconfig {}: {}",
                path.display(),
                one_line(&e.to_string())
            ))
        })?,
        None => Kubeconfig::read().map_err(|e| {
            Failure::Usage(format!(
                "--all-contexts: no kubeconfig to read: {}",
                one_line(&e.to_string())
            ))
        })?,
    };
    Ok(file.contexts.into_iter().map(|c| c.name).collect())
}

/// The cluster name of a context: lowercase, other characters than
/// letters, digits and `-` as `-`, at most 63, trimmed of `-`
/// (`arn:aws:eks:eu-west-1:1:cluster/prod` → `arn-aws-eks-eu-west-1-1-cluster-prod`).
pub fn cluster_name(context: &str) -> String {
    let name: String = context
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    name.trim_matches('-')
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// One client per context, named after it; two contexts with the same
/// name are a usage error.
pub async fn clients(
    kubeconfig: Option<&Path>,
    contexts: &[String],
) -> Result<Vec<(String, kube::Client)>, Failure> {
    let mut out: Vec<(String, kube::Client)> = Vec::with_capacity(contexts.len());
    for context in contexts {
        let name = cluster_name(context);
        if name.is_empty() {
            return Err(Failure::Usage(format!(
                "--context {context:?}: cannot name a cluster after it; expected letters or digits in it (or a clusters: block)"
            )));
        }
        if let Some((_, _)) = out.iter().find(|(n, _)| *n == name) {
            return Err(Failure::Usage(format!(
                "--context {context:?}: names the cluster {name:?} like an earlier context; expected contexts with distinct names"
            )));
        }
        out.push((name, client(kubeconfig, Some(context)).await?));
    }
    Ok(out)
}
