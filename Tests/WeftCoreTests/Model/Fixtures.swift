import WeftCore
import WeftManifests
import XCTest

/// Manifests shaped as `kubectl get -o yaml` prints them: status, managedFields,
/// annotations and all.
enum Fixtures {
    static let service = """
        apiVersion: v1
        kind: Service
        metadata:
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: |
              {"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"name":"web","namespace":"demo"},"spec":{"ports":[{"name":"http","port":80,"targetPort":8080}],"selector":{"app":"web"}}}
          creationTimestamp: "2024-05-02T10:11:12Z"
          labels:
            app: web
            app.kubernetes.io/part-of: demo
          managedFields:
          - apiVersion: v1
            fieldsType: FieldsV1
            fieldsV1:
              f:metadata:
                f:annotations:
                  .: {}
                  f:kubectl.kubernetes.io/last-applied-configuration: {}
              f:spec:
                f:ports:
                  .: {}
                  k:{"port":80,"protocol":"TCP"}:
                    .: {}
                    f:name: {}
            manager: kubectl-client-side-apply
            operation: Update
            time: "2024-05-02T10:11:12Z"
          name: web
          namespace: demo
          resourceVersion: "48211"
          uid: 0b0c4f4e-4a55-4a0e-9a8a-3c8e3b1f2a11
        spec:
          clusterIP: 10.96.0.10
          clusterIPs:
          - 10.96.0.10
          internalTrafficPolicy: Cluster
          ipFamilies:
          - IPv4
          ipFamilyPolicy: SingleStack
          ports:
          - name: http
            port: 80
            protocol: TCP
            targetPort: 8080
          - name: grpc
            port: 9090
            protocol: TCP
            targetPort: grpc-port
            appProtocol: kubernetes.io/h2c
          selector:
            app: web
          sessionAffinity: None
          type: ClusterIP
        status:
          loadBalancer: {}
        """

    static let endpointSliceList = """
        apiVersion: v1
        items:
        - addressType: IPv4
          apiVersion: discovery.k8s.io/v1
          endpoints:
          - addresses:
            - 10.211.0.2
            conditions:
              ready: true
              serving: true
              terminating: false
            nodeName: node-1
            targetRef:
              kind: Pod
              name: web-0
              namespace: demo
              uid: 6d0d3e1c-1f7b-4b3e-8a43-0c1c0f1e2d3a
            zone: zone-a
          - addresses:
            - 10.211.0.3
            conditions:
              ready: false
              serving: true
              terminating: true
            targetRef:
              kind: Pod
              name: web-1
          - addresses:
            - 10.211.0.4
            targetRef:
              kind: Pod
              name: web-2
          kind: EndpointSlice
          metadata:
            annotations:
              endpoints.kubernetes.io/last-change-trigger-time: "2024-05-02T10:11:40Z"
            creationTimestamp: "2024-05-02T10:11:12Z"
            generateName: web-
            generation: 7
            labels:
              endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
              kubernetes.io/service-name: web
            name: web-7x2kq
            namespace: demo
            ownerReferences:
            - apiVersion: v1
              blockOwnerDeletion: true
              controller: true
              kind: Service
              name: web
              uid: 0b0c4f4e-4a55-4a0e-9a8a-3c8e3b1f2a11
            resourceVersion: "48302"
            uid: 4f1b2c3d-0000-4000-8000-000000000001
          ports:
          - name: http
            port: 8080
            protocol: TCP
        kind: List
        metadata:
          resourceVersion: ""
        """

    static let pod = """
        apiVersion: v1
        kind: Pod
        metadata:
          creationTimestamp: "2024-05-02T10:11:20Z"
          generateName: web-
          labels:
            app: web
            controller-revision-hash: web-5d4f8b7c9
            statefulset.kubernetes.io/pod-name: web-0
          name: web-0
          namespace: demo
          ownerReferences:
          - apiVersion: apps/v1
            blockOwnerDeletion: true
            controller: true
            kind: StatefulSet
            name: web
            uid: 11111111-2222-3333-4444-555555555555
          resourceVersion: "48290"
          uid: 6d0d3e1c-1f7b-4b3e-8a43-0c1c0f1e2d3a
        spec:
          containers:
          - image: nginx:1.27
            imagePullPolicy: IfNotPresent
            name: web
            ports:
            - containerPort: 8080
              name: http
              protocol: TCP
            resources: {}
            terminationMessagePath: /dev/termination-log
            volumeMounts:
            - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
              name: kube-api-access-abcde
              readOnly: true
          dnsPolicy: ClusterFirst
          enableServiceLinks: true
          nodeName: node-1
          restartPolicy: Always
          serviceAccount: web
          serviceAccountName: web
          terminationGracePeriodSeconds: 30
          tolerations:
          - effect: NoExecute
            key: node.kubernetes.io/not-ready
            operator: Exists
            tolerationSeconds: 300
        status:
          conditions:
          - lastProbeTime: null
            lastTransitionTime: "2024-05-02T10:11:20Z"
            status: "True"
            type: Initialized
          - lastProbeTime: null
            lastTransitionTime: "2024-05-02T10:11:40Z"
            status: "True"
            type: Ready
          containerStatuses:
          - containerID: containerd://abc
            image: docker.io/library/nginx:1.27
            name: web
            ready: true
            restartCount: 0
            started: true
            state:
              running:
                startedAt: "2024-05-02T10:11:39Z"
          hostIP: 192.168.1.10
          phase: Running
          podIP: 10.211.0.2
          podIPs:
          - ip: 10.211.0.2
          qosClass: BestEffort
          startTime: "2024-05-02T10:11:20Z"
        """

    static let route = """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          annotations:
            kubectl.kubernetes.io/last-applied-configuration: |
              {"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute"}
          creationTimestamp: "2024-05-02T10:12:00Z"
          generation: 1
          name: web-split
          namespace: demo
          resourceVersion: "48400"
          uid: 22222222-3333-4444-5555-666666666666
        spec:
          parentRefs:
          - group: ""
            kind: Service
            name: web
            port: 80
          rules:
          - matches:
            - path:
                type: PathPrefix
                value: /api
              headers:
              - name: x-canary
                value: "true"
              method: GET
            backendRefs:
            - group: ""
              kind: Service
              name: web-v2
              port: 80
              weight: 90
            - name: web
              port: 80
              weight: 10
            timeouts:
              request: 10s
              backendRequest: 2s
            retry:
              codes: [502, 503]
              attempts: 3
              backoff: 100ms
          - backendRefs:
            - name: web
              port: 80
        status:
          parents:
          - conditions:
            - lastTransitionTime: "2024-05-02T10:12:00Z"
              message: Route was valid
              observedGeneration: 1
              reason: Accepted
              status: "True"
              type: Accepted
            controllerName: weft.dev/control-plane
            parentRef:
              group: ""
              kind: Service
              name: web
              port: 80
        """

    static let policy = """
        apiVersion: weft.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata:
          name: web-allow-client
          namespace: demo
        spec:
          selector:
            matchLabels:
              app: web
          action: ALLOW
          rules:
          - from:
            - identities:
              - spiffe://cluster.local/ns/demo/sa/client
              - spiffe://cluster.local/ns/ops/*
            - namespaces: [monitoring]
              serviceAccounts: [prometheus]
            to:
            - ports: [8080]
              methods: [GET, HEAD]
              paths: [/api/*, /healthz]
        """

    static let meshConfig = """
        apiVersion: weft.dev/v1alpha1
        kind: MeshConfig
        metadata:
          name: mesh
        spec:
          trustDomain: example.org
          mtls:
            mode: STRICT
            http1Transport: HTTP2
          retryBudget:
            ratio: 0.25
            minRetriesPerSecond: 5
            window: 30s
          tracing:
            sampling: 0.5
          outboundPolicy: REGISTRY_ONLY
        """

    /// Decodes and fails the test on any error.
    static func decodeClean(_ yaml: String, file: String = "test.yaml", line: UInt = #line) -> [MeshResource] {
        let result = ManifestDecoder.decode(yaml, file: file)
        XCTAssertEqual(result.errors.map(\.description), [], line: line)
        return result.resources
    }

    /// The error descriptions of decoding `yaml`.
    static func errors(_ yaml: String, file: String = "test.yaml") -> [String] {
        ManifestDecoder.decode(yaml, file: file).errors.map(\.description)
    }
}
